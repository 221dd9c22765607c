"""Plotly figures for the app, built from what the queries return.

Figures only draw stored results; no statistic is computed here. Every axis has
a title with its unit (times are UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "attribution_over_time",
    "attribution_ranking",
    "bin_labels",
    "distribution",
    "drift_heatmap",
    "drift_timeline",
    "metric_over_time",
    "reliability_diagram",
    "shap_bars",
]

_TIME = "window start (UTC)"
_HEIGHT = 340


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = _HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin={"l": 60, "r": 20, "t": 70, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
    )
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def _shade(fig: go.Figure, span: tuple[Any, Any] | None) -> None:
    if span and span[0] is not None:
        fig.add_vrect(
            x0=span[0], x1=span[1], fillcolor="red", opacity=0.08, line_width=0,
            annotation_text="incident", annotation_position="top left",
        )


def drift_timeline(
    rows: pd.DataFrame, feature: str, span: tuple[Any, Any] | None = None
) -> go.Figure:
    """Drift statistic of one feature per window, its threshold, drifted windows marked."""
    data = rows[rows["feature"] == feature]
    method = data["method"].iloc[-1] if len(data) else ""
    fig = go.Figure()
    fig.add_scatter(x=data["window_start"], y=data["score"], mode="lines+markers", name=method)
    drifted = data[data["drifted"].astype(bool)]
    fig.add_scatter(
        x=drifted["window_start"], y=drifted["score"], mode="markers", name="drifted",
        marker={"color": "red", "size": 10, "symbol": "x"},
    )
    fig.add_scatter(
        x=data["window_start"], y=data["threshold"], mode="lines", name="threshold",
        line={"dash": "dash", "color": "grey"},
    )
    _shade(fig, span)
    return _layout(fig, f"{feature}: {method} per window", _TIME, f"{method} statistic (unitless)")


def bin_labels(profile: dict[str, Any]) -> list[str]:
    """Readable names of a baseline feature's bins (see ``monitor.baseline``)."""
    counts = profile.get("counts") or []
    if profile.get("kind") == "categorical":
        names = [str(c) for c in profile.get("categories") or []] + ["other", "unseen"]
    else:
        edges = [float(e) for e in profile.get("edges") or []]
        if not edges:
            names = ["all"]
        else:
            names = [f"< {edges[0]:.4g}"]
            names += [f"[{lo:.4g}, {hi:.4g})" for lo, hi in pairwise(edges)]
            names.append(f"≥ {edges[-1]:.4g}")
    if len(names) != len(counts):  # a profile from another version: fall back to indices
        names = [f"bin {i}" for i in range(len(counts))]
    return names


def _shares(counts: Sequence[float]) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    total = values.sum()
    return values / total if total > 0 else values


def distribution(
    profile: dict[str, Any], window_counts: Sequence[float] | None, feature: str,
    statistic: str = "",
) -> go.Figure:
    """Window vs baseline share of observations per baseline bin (histogram or categories)."""
    labels = bin_labels(profile)
    fig = go.Figure()
    fig.add_bar(x=labels, y=_shares(profile.get("counts") or []), name="baseline")
    if window_counts is not None and len(window_counts) == len(labels):
        fig.add_bar(x=labels, y=_shares(window_counts), name="incident windows")
    fig.update_layout(barmode="group")
    kind = "category" if profile.get("kind") == "categorical" else "value bin (baseline quantiles)"
    title = f"{feature}: window vs baseline" + (f" — {statistic}" if statistic else "")
    return _layout(fig, title, kind, "share of observations (fraction)")


def metric_over_time(
    frame: pd.DataFrame, metric: str, label: str, span: tuple[Any, Any] | None = None,
    unit: str = "unitless",
) -> go.Figure:
    """A metric per window: columns ``value``/``lower``/``upper``/``estimated``/``baseline``."""
    fig = go.Figure()
    if "upper" in frame and frame["upper"].notna().any():
        fig.add_scatter(
            x=frame["window_start"], y=frame["upper"], mode="lines", line={"width": 0},
            showlegend=False, hoverinfo="skip",
        )
        fig.add_scatter(
            x=frame["window_start"], y=frame["lower"], mode="lines", line={"width": 0},
            fill="tonexty", fillcolor="rgba(31,119,180,0.15)", name="confidence interval",
        )
    if "value" in frame:
        fig.add_scatter(x=frame["window_start"], y=frame["value"], mode="lines+markers",
                        name="realised")
    if "estimated" in frame and frame["estimated"].notna().any():
        fig.add_scatter(x=frame["window_start"], y=frame["estimated"], mode="lines",
                        name="estimated (no labels yet)", line={"dash": "dot"})
    if "baseline" in frame and frame["baseline"].notna().any():
        fig.add_scatter(x=frame["window_start"], y=frame["baseline"], mode="lines",
                        name="baseline", line={"dash": "dash", "color": "grey"})
    _shade(fig, span)
    return _layout(fig, f"{label} per window", _TIME, f"{metric} ({unit})")


def reliability_diagram(curve: dict[str, Any] | None) -> go.Figure:
    """Observed positive rate against mean predicted score: window vs baseline."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                    line={"dash": "dash", "color": "grey"})
    for name in ("baseline", "window"):
        points = (curve or {}).get(name) or []
        if points:
            xs, ys, ns = zip(*[(p[0], p[1], p[2] if len(p) > 2 else None) for p in points])
            fig.add_scatter(
                x=xs, y=ys, mode="lines+markers", name=name,
                text=[f"n={n}" for n in ns], hovertemplate="score %{x:.3f}<br>"
                "positive rate %{y:.3f}<br>%{text}",
            )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, "Reliability diagram", "mean predicted probability (fraction)",
                   "observed positive rate (fraction)")


def attribution_ranking(
    baseline: dict[str, float], window: dict[str, float], top: int = 15
) -> go.Figure:
    """Mean |SHAP| per feature, baseline vs window, features in baseline importance order."""
    names = sorted(set(baseline) | set(window),
                   key=lambda f: (-(baseline.get(f) or 0.0), -(window.get(f) or 0.0)))[:top]
    names = names[::-1]  # plotly draws the first bar at the bottom
    fig = go.Figure()
    fig.add_bar(y=names, x=[baseline.get(f) for f in names], orientation="h", name="baseline")
    fig.add_bar(y=names, x=[window.get(f) for f in names], orientation="h", name="incident windows")
    fig.update_layout(barmode="group")
    return _layout(fig, "Feature importance: baseline vs window", "mean |SHAP| (model output units)",
                   "feature", height=max(_HEIGHT, 24 * len(names) + 120))


def attribution_over_time(frame: pd.DataFrame, span: tuple[Any, Any] | None = None) -> go.Figure:
    """NDCG of the window's importance ranking against the baseline's, per window."""
    fig = go.Figure()
    fig.add_scatter(x=frame["window_start"], y=frame["ndcg"], mode="lines+markers", name="NDCG")
    if "threshold" in frame:
        fig.add_scatter(x=frame["window_start"], y=frame["threshold"], mode="lines",
                        name="threshold", line={"dash": "dash", "color": "grey"})
    _shade(fig, span)
    return _layout(fig, "Attribution agreement with baseline", _TIME, "NDCG (0–1)")


def drift_heatmap(scores: pd.DataFrame, title: str) -> go.Figure:
    """Feature × time heatmap of score / threshold (≥ 1 means the threshold was crossed)."""
    fig = go.Figure(
        go.Heatmap(
            z=scores.to_numpy(), x=scores.columns, y=scores.index, colorscale="Reds", zmin=0,
            zmax=2, colorbar={"title": "score /<br>threshold"},
            hovertemplate="%{y}<br>%{x}<br>score/threshold %{z:.2f}<extra></extra>",
        )
    )
    return _layout(fig, title, _TIME, "feature", height=max(_HEIGHT, 18 * len(scores) + 140))


def shap_bars(shap_values: dict[str, float], features: dict[str, Any], top: int = 15) -> go.Figure:
    """SHAP values of one prediction, largest magnitude first."""
    items = sorted(shap_values.items(), key=lambda kv: -abs(kv[1] or 0.0))[:top][::-1]
    names = [f"{name} = {features.get(name)!s:.12}" for name, _ in items]
    values = [value for _, value in items]
    fig = go.Figure(
        go.Bar(
            y=names, x=values, orientation="h",
            marker={"color": ["#d62728" if (v or 0) > 0 else "#1f77b4" for v in values]},
        )
    )
    return _layout(fig, "SHAP values of this prediction", "SHAP value (model output units)",
                   "feature = value", height=max(_HEIGHT, 24 * len(items) + 120))
