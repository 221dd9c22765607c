"""``driftd baseline show``: every section of a baseline, one table each.

Sections are functions listed in :data:`SECTIONS`, shown in that order; each
takes the baseline and ``wide`` and returns a :class:`~monitor.cli_tables.TextTable`
(or None when the baseline has nothing for it). A new figure of the baseline is a
new function and one entry in :data:`SECTIONS`, nothing else::

    def _novelty(baseline: Baseline, wide: bool) -> TextTable | None:
        out = TextTable([Column("feature"), Column("novelty", right=True)], title="Novelty")
        ...
        return out

``--section NAME`` (repeatable) shows only the sections named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.baseline import Baseline, FeatureProfile
from monitor.cli_tables import Column, TextTable, fmt

__all__ = ["SECTIONS", "Section", "sections"]

Section = Callable[[Baseline, bool], TextTable | None]
_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "mae", "rmse")
_TOP = 15


def _summary(baseline: Baseline, wide: bool) -> TextTable:
    out = TextTable(
        [Column("field"), Column("value", flexible=True)],
        title=f"Baseline {baseline.model} {baseline.version}",
    )
    numeric, categorical = len(baseline.numeric_names), len(baseline.categorical_names)
    n_rows = next(iter(baseline.features.values())).n if baseline.features else 0
    rows = [
        ("model / version", f"{baseline.model} / {baseline.version}"),
        ("task", baseline.task),
        ("sha256", baseline.sha256 if wide else baseline.sha256[:16] + "…"),
        ("created", baseline.created_at or "—"),
        ("source", baseline.source or "—"),
        ("reference rows", f"{n_rows:,}"),
        ("features", f"{len(baseline.features)} ({numeric} numeric, {categorical} categorical)"),
        ("multivariate sample", f"{len(next(iter(baseline.reference_rows.values()), []))} rows"),
    ]
    for name, value in rows:
        out.add_row(name, value)
    return out


def _describe(profile: FeatureProfile, wide: bool) -> str:
    if profile.kind == "numeric":
        return f"mean {fmt(profile.mean, 4)}, sd {fmt(profile.std, 4)}, {fmt(profile.minimum, 4)} .. {fmt(profile.maximum, 4)}"
    shown = profile.categories if wide else profile.categories[:5]
    more = (
        "" if len(shown) == len(profile.categories) else f" +{len(profile.categories) - len(shown)}"
    )
    return ", ".join(shown) + more


def _features(baseline: Baseline, wide: bool) -> TextTable:
    out = TextTable(
        [
            Column("feature"),
            Column("kind"),
            Column("bins", right=True),
            Column("missing", right=True),
            Column("importance", right=True),
            Column("range / top categories", flexible=True),
        ],
        title=f"Features ({len(baseline.features)})",
    )
    total = sum(abs(v) for v in baseline.importances.values()) or None
    for name, profile in baseline.features.items():
        share = baseline.importances.get(name)
        out.add_row(
            name,
            profile.kind,
            str(profile.n_bins),
            f"{profile.missing_ratio:.2%}",
            f"{abs(share) / total:.1%}" if share is not None and total else "—",
            _describe(profile, wide),
        )
    return out


def _outputs(baseline: Baseline, wide: bool) -> TextTable | None:
    parts = [
        (what, p)
        for what, p in (
            ("prediction", baseline.prediction),
            ("score", baseline.score),
            ("label", baseline.label),
        )
        if p is not None
    ]
    if not parts:
        return None
    out = TextTable(
        [
            Column("output"),
            Column("kind"),
            Column("bins", right=True),
            Column("missing", right=True),
            Column("classes / range", flexible=True),
        ],
        title="Prediction, score and label",
    )
    for what, profile in parts:
        out.add_row(
            what,
            profile.kind,
            str(profile.n_bins),
            f"{profile.missing_ratio:.2%}",
            _describe(profile, wide),
        )
    return out


def _performance(baseline: Baseline, wide: bool) -> TextTable | None:
    values = {k: v for k, v in baseline.performance.items() if isinstance(v, (int, float))}
    if not values:
        return None
    out = TextTable(
        [Column("metric"), Column("reference", right=True)],
        title="Reference performance (the baseline of driftd_performance and DriftdPerformanceDrop)",
    )
    for metric in [m for m in _METRICS if m in values] + sorted(set(values) - set(_METRICS)):
        out.add_row(metric, fmt(values[metric]))
    return out


def _calibration(baseline: Baseline, wide: bool) -> TextTable | None:
    calibration = baseline.calibration
    scalars = {k: v for k, v in calibration.items() if isinstance(v, (int, float))}
    if not scalars:
        return None
    curve = calibration.get("reliability_curve") or []
    out = TextTable(
        [Column("statistic"), Column("reference", right=True)],
        title=f"Reference calibration (reliability curve: {len(curve)} bins)",
    )
    for name in sorted(scalars, key=lambda k: (not k.startswith("ece"), k)):
        out.add_row(name, fmt(scalars[name]))
    if wide and curve:
        for point in curve:
            out.add_row(
                f"  bin at score {fmt(point[0], 3)}",
                f"{fmt(point[1], 3)} (n {point[2] if len(point) > 2 else '—'})",
            )
    return out


def _importances(baseline: Baseline, wide: bool) -> TextTable:
    out = TextTable(
        [Column("feature"), Column("mean |SHAP|", right=True), Column("share", right=True)],
        title="Global SHAP importances",
        caption=""
        if baseline.importances
        else "none: build the baseline with --model-file to weigh "
        "drift by importance and to detect attribution drift",
    )
    total = sum(abs(v) for v in baseline.importances.values()) or 1.0
    ranked = sorted(baseline.importances.items(), key=lambda kv: -abs(kv[1]))
    for name, value in ranked if wide else ranked[:_TOP]:
        out.add_row(name, fmt(float(value)), f"{abs(value) / total:.1%}")
    if not wide and len(ranked) > _TOP:
        out.caption = f"{len(ranked) - _TOP} more: driftd baseline show --wide"
    return out


SECTIONS: tuple[tuple[str, Section], ...] = (
    ("summary", _summary),
    ("features", _features),
    ("outputs", _outputs),
    ("performance", _performance),
    ("calibration", _calibration),
    ("importances", _importances),
)


def sections(
    baseline: Baseline, wide: bool = False, only: list[str] | None = None
) -> list[tuple[str, Any]]:
    """``(name, table)`` of every section with something to show (or only those named)."""
    unknown = sorted(set(only or ()) - {n for n, _ in SECTIONS} - {"budget"})  # budget: monitor/baseline_budget.py
    if unknown:
        raise ValueError(
            f"--section: unknown {', '.join(unknown)}; allowed: {', '.join(n for n, _ in SECTIONS)}, budget"
        )
    shown = []
    for name, section in SECTIONS:
        if only and name not in only:
            continue
        table = section(baseline, wide)
        if table is not None:
            shown.append((name, table))
    return shown
