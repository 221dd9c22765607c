"""Reshape stored results into the tables and series the pages show.

Pure pandas over query results: picking a metric out of the JSON columns,
ranking features for an incident, pivoting the heatmap. Nothing here tests for
drift; it only orders and arranges what the daemon stored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from monitor.findings import as_number as _number

__all__ = [
    "PSEUDO_FEATURES",
    "calibration_frame",
    "drift_ratio",
    "heatmap_bucket_seconds",
    "heatmap_matrix",
    "importance_weights",
    "is_pseudo",
    "metric_frame",
    "metric_names",
    "primary",
    "rank_features",
    "summed_counts",
]

# Pseudo-features the daemon reports next to the inputs, and the baseline profile
# each is compared with. Any ``__name__`` is treated as a pseudo-feature.
PSEUDO_FEATURES = {"__prediction__": "prediction", "__prediction_score__": "score", "__label__": "label", "__multivariate__": "multivariate"}


def is_pseudo(names: pd.Series) -> pd.Series:
    """Whether each feature name is a pseudo-feature (``__prediction__``, ``__prediction_score__``...)."""
    return names.str.startswith("__") & names.str.endswith("__")
PERFORMANCE_ORDER = ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "rmse", "mae")
CALIBRATION_ORDER = ("ece", "ece_equal_width", "ece_equal_mass", "brier", "brier_score")
# Columns of the heatmap; longer ranges are bucketed to keep the browser responsive.
MAX_HEATMAP_COLUMNS = 288


def metric_names(maps: pd.Series, order: tuple[str, ...] = ()) -> list[str]:
    """Metric names found in a column of ``{metric: ...}`` maps, preferred ones first."""
    found: set[str] = set()
    for item in maps:
        if isinstance(item, dict):
            found.update(k for k, v in item.items() if not isinstance(v, dict))
    return [m for m in order if m in found] + sorted(found - set(order))


def primary(item: dict[str, Any] | None, order: tuple[str, ...]) -> tuple[str, float]:
    """The first preferred metric present in a map and its value (``("", nan)`` if none)."""
    names = metric_names(pd.Series([item or {}]), order)
    if not names:
        return "", math.nan
    return names[0], _value(item or {}, names[0])


def _value(item: dict[str, Any], metric: str) -> float:
    raw = item.get(metric) if isinstance(item, dict) else None
    if isinstance(raw, (list, tuple)):
        return _number(raw[0]) if raw else math.nan
    return _number(raw)


def _bound(item: dict[str, Any], metric: str, index: int) -> float:
    raw = item.get(metric) if isinstance(item, dict) else None
    if isinstance(raw, (list, tuple)) and len(raw) > index:
        return _number(raw[index])
    return math.nan


def metric_frame(windows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Realised value with its interval, estimated value and baseline of ``metric`` per window."""
    perf = windows["performance"]
    return pd.DataFrame(
        {
            "window_start": windows["window_start"],
            "value": [_value(p, metric) for p in perf],
            "lower": [_bound(p, metric, 1) for p in perf],
            "upper": [_bound(p, metric, 2) for p in perf],
            "estimated": [_value(p, metric) for p in windows["estimated_performance"]],
            "baseline": [_value(p, metric) for p in windows["baseline_performance"]],
            "n_labels": windows["n_labels"],
        }
    )


def calibration_frame(windows: pd.DataFrame, statistic: str) -> pd.DataFrame:
    """A calibration statistic per window and its baseline value."""
    return pd.DataFrame(
        {
            "window_start": windows["window_start"],
            "value": [_value(c, statistic) for c in windows["calibration"]],
            "baseline": [_value(c, statistic) for c in windows["baseline_calibration"]],
        }
    )


def drift_ratio(data: pd.DataFrame) -> pd.Series:
    """``score / threshold`` oriented so that ≥ 1 means past the threshold, per row.

    Methods whose score falls with drift (``higher_is_drift=False`` in the detector
    registry) use ``threshold / score``.
    """
    from detectors.registry import REGISTRY

    score = data["score"].astype(float)
    threshold = data["threshold"].astype(float)
    lower = data["method"].map(
        lambda m: m in REGISTRY and not REGISTRY[m].higher_is_drift
    ).astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(lower, threshold / score, score / threshold)
    return pd.Series(ratio, index=data.index).replace([np.inf, -np.inf], np.nan)


def importance_weights(
    features: list[str], baseline_importances: dict[str, float] | None,
    window_attributions: pd.Series | None,
) -> tuple[dict[str, float] | None, str]:
    """Share of total importance per feature and where it comes from.

    Baseline SHAP importances first, else the windows' mean |SHAP|; ``(None, "")``
    when the model has neither (no explanations for this model).
    """
    source: dict[str, float] = {}
    origin = ""
    if baseline_importances:
        source = {f: abs(_number(v)) for f, v in baseline_importances.items()}
        origin = "the baseline's SHAP importances"
    elif window_attributions is not None:
        sums: dict[str, list[float]] = {}
        for attribution in window_attributions:
            for f, v in ((attribution or {}).get("mean_abs_shap") or {}).items():
                sums.setdefault(f, []).append(abs(_number(v)))
        source = {f: float(np.nanmean(v)) for f, v in sums.items()}
        origin = "the mean |SHAP| of these windows' explained predictions"
    total = sum(v for v in source.values() if not math.isnan(v))
    if not source or total <= 0:
        return None, ""
    return {f: source.get(f, 0.0) / total for f in features}, origin


def rank_features(
    results: pd.DataFrame,
    baseline_importances: dict[str, float] | None = None,
    window_attributions: pd.Series | None = None,
    first: str | None = None,
) -> pd.DataFrame:
    """Rank the features of the given windows, most suspicious first.

    Order: the alerted feature ``first`` (when it has results), then features by the
    number of windows in which they drifted, then by drift × importance. Drift is a
    feature's largest ``score / threshold`` over the windows (≥ 1 means a window
    crossed the threshold); importance is its share of the model's total importance
    (NaN, and drift alone decides, when the model has no explanations).
    Pseudo-features (prediction, score, label) are left out. ``DataFrame.attrs``
    carries ``importance_source`` (empty when there is no importance).
    """
    columns = ["feature", "method", "windows_drifted", "windows", "max_score", "threshold", "drift_ratio",
               "min_p_value", "importance", "rank_score"]
    data = results[~is_pseudo(results["feature"])]
    if data.empty:
        return pd.DataFrame(columns=columns)
    data = data.assign(ratio=drift_ratio(data))
    grouped = data.groupby("feature")
    table = pd.DataFrame(
        {
            "method": grouped["method"].last(),
            "max_score": grouped["score"].max(),
            "threshold": grouped["threshold"].last(),
            "drift_ratio": grouped["ratio"].max(),
            "windows_drifted": grouped["drifted"].sum().astype(int),
            "windows": grouped.size(),
            "min_p_value": grouped["p_value"].min(),
        }
    ).reset_index()
    weights, origin = importance_weights(list(table["feature"]), baseline_importances, window_attributions)
    table["importance"] = table["feature"].map(weights).astype(float) if weights else np.nan
    table["rank_score"] = table["drift_ratio"].fillna(0.0) * table["importance"].fillna(1.0)
    table["alerted"] = table["feature"] == first
    table = table.sort_values(
        ["alerted", "windows_drifted", "rank_score", "drift_ratio", "feature"],
        ascending=[False, False, False, False, True],
    )
    ranked = table[columns].reset_index(drop=True)
    ranked.attrs["importance_source"] = origin
    return ranked


def summed_counts(results: pd.DataFrame, feature: str) -> list[float] | None:
    """Window counts per baseline bin of ``feature`` added over the given windows."""
    rows = [c for c in results.loc[results["feature"] == feature, "counts"] if c]
    if not rows:
        return None
    width = max(len(r) for r in rows)
    total = np.zeros(width)
    for row in rows:
        total[: len(row)] += np.asarray(row, dtype=float)
    return total.tolist()


def heatmap_matrix(cells: pd.DataFrame) -> pd.DataFrame:
    """Feature × time matrix from ``(feature, window_start, ratio)`` cells, worst feature last.

    Plotly draws the last row on top, so the most drifted feature heads the heatmap.
    """
    if cells.empty:
        return pd.DataFrame()
    matrix = cells.pivot_table(index="feature", columns="window_start", values="ratio",
                               aggfunc="max")
    order = matrix.max(axis=1).sort_values(ascending=True, kind="stable").index
    return matrix.loc[order]


def heatmap_bucket_seconds(start: pd.Timestamp, end: pd.Timestamp, window_seconds: float,
                           max_columns: int = MAX_HEATMAP_COLUMNS) -> int:
    """Column width of the heatmap: one window, or wider so that at most max_columns remain."""
    span = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    width = max(int(window_seconds), 1)
    if span / width > max_columns:
        width = math.floor(span / max_columns) + 1
    return width
