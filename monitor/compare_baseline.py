"""``driftd compare --reference baseline.json``: a file against a stored baseline, as the daemon decides.

The current rows take the daemon's own path from decoded events onward: they are
columnarised like decoded prediction events (``monitor.decode.columnarise``),
binned on the baseline's edges (``monitor.windows.Layout``), folded into one
window aggregate with the daemon's bounded sample (``windows.sample_size``) and
evaluated by :func:`monitor.evaluate.evaluate_window` with the ``drift`` settings
of ``--config`` (or the defaults): the same methods, thresholds, correction,
multivariate method and minimum window size as ``driftd run``. A ``--target``
column gets the daemon's label drift (``monitor.truth.window.label_drift``).
So the verdict is what ``driftd run`` would report if these rows were one window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from monitor.baseline import Baseline
from monitor.compare import Comparison, FeatureRow
from monitor.config import Settings
from monitor.decode import Columns, _Group, columnarise
from monitor.evaluate import evaluate_window
from monitor.results import LABEL, PREDICTION, PREDICTION_SCORE, WindowKey
from monitor.windows import Layout

__all__ = ["compare_to_baseline"]


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _group(
    current: pd.DataFrame,
    names: list[str],
    prediction: str | None,
    score: str | None,
    positive: str,
) -> _Group:
    records = current[names].to_dict("records")
    group = _Group()
    group.features = [{k: _clean(v) for k, v in row.items()} for row in records]
    n = len(records)
    group.ids = [str(i) for i in range(n)]
    group.times = [0.0] * n
    group.segments = [""] * n
    group.positions = list(range(n))
    group.indices = list(range(n))
    group.predictions = (
        [_clean(v) for v in current[prediction].tolist()] if prediction else [None] * n
    )
    group.scores = (
        [None if _clean(v) is None else {positive: float(v)} for v in current[score].tolist()]
        if score
        else [None] * n
    )
    return group


def _label_drift(baseline: Baseline, labels: pd.Series) -> list:
    from monitor.events import category_text
    from monitor.truth.window import WindowTruth, label_drift

    window = WindowTruth()
    present = labels.dropna()
    window.n_labels = len(present)
    if baseline.label is not None and baseline.label.kind == "numeric":
        window.count_numeric_labels(
            pd.to_numeric(present, errors="coerce").to_numpy(np.float64), baseline.label.edges
        )
    else:
        window.count_labels([category_text(v) for v in present.tolist()])
    return label_drift(baseline, window)


def compare_to_baseline(
    baseline: Baseline,
    current: pd.DataFrame,
    settings: Settings,
    *,
    prediction: str | None = None,
    score: str | None = None,
    target: str | None = None,
    reference_name: str = "baseline",
    current_name: str = "current",
) -> Comparison:
    """Evaluate ``current`` as one window of ``baseline``'s model version (see module docstring).

    Raises
    ------
    ValueError
        The current file lacks a baseline feature or a named column, or has no rows.
    """
    if current.empty:
        raise ValueError(f"{current_name}: the current data has no rows")
    names = list(baseline.features)
    missing = [
        c
        for c in [*names, *(c for c in (prediction, score, target) if c)]
        if c not in current.columns
    ]
    if missing:
        raise ValueError(
            f"columns of the baseline missing from the current file: {', '.join(map(str, missing))}"
        )
    model = settings.model(baseline.model)
    positive = model.positive_class if model else "1"
    layout = Layout(
        baseline, settings.windows.sample_size, settings.limits.max_categories_per_feature
    )
    columns = Columns(
        layout.numeric_names,
        layout.categorical_names,
        positive,
        layout.prediction_edges is not None,
        score_of_prediction=model is not None and model.task == "multiclass",
    )
    batch, _ = columnarise(
        baseline.model,
        baseline.version,
        _group(current, names, prediction, score, positive),
        columns,
    )
    aggregate = layout.empty()
    aggregate.add(layout.bin_batch(batch), slice(None), settings.windows.sample_size)
    report = evaluate_window(
        WindowKey(baseline.model, baseline.version, ""),
        0.0,
        float(settings.windows.size_seconds),
        aggregate,
        layout,
        settings.drift,
        model,
        settings.windows.min_events,
    )
    # Without the column there is nothing to compare (the rows would read as missing values).
    outputs = [
        r
        for r in report.prediction
        if (r.feature == PREDICTION and prediction) or (r.feature == PREDICTION_SCORE and score)
    ]
    labels = _label_drift(baseline, current[target]) if target else []
    profiles = dict(baseline.features)
    counts = {name: np.asarray(c, dtype=np.float64) for name, c in report.feature_counts.items()}
    for pseudo, profile, binned, column in (
        (PREDICTION, baseline.prediction, aggregate.prediction_counts, prediction),
        (PREDICTION_SCORE, baseline.score, aggregate.score_counts, score),
    ):
        if profile is not None and column and len(binned) == profile.n_bins:
            profiles[pseudo], counts[pseudo] = profile, binned.astype(np.float64)
    comparison = Comparison(
        reference_name,
        current_name,
        int(next(iter(baseline.features.values())).n) if names else 0,
        len(current),
        settings.drift.correction,
        settings.drift.alpha,
        settings.drift.drift_share_threshold,
        multivariate=list(report.multivariate),
        profiles=profiles,
        current_counts=counts,
        basis="baseline",
    )
    results = [*report.features, *outputs, *labels]
    corrected = _corrected(report.features, settings.drift.correction)
    for result in results:
        profile = {
            PREDICTION: baseline.prediction,
            PREDICTION_SCORE: baseline.score,
            LABEL: baseline.label,
        }.get(result.feature, baseline.features.get(result.feature))
        kind = report.feature_kinds.get(
            result.feature, profile.kind if profile is not None else "label"
        )
        comparison.rows.append(
            FeatureRow(
                result,
                kind,
                corrected.get(
                    result.feature,
                    result.p_value if result in outputs or result in labels else None,
                ),
                profile.missing_ratio if profile is not None else 0.0,
                report.missing_ratio.get(result.feature, 0.0),
            )
        )
    return comparison


def _corrected(results: list, correction: str) -> dict[str, float]:
    """The corrected p-values of the input features, across all of them (as ``decide`` applies them)."""
    from detectors.decision import adjust_p_values

    tested = [r for r in results if r.p_value is not None and math.isfinite(r.p_value)]
    return {
        r.feature: float(v)
        for r, v in zip(tested, adjust_p_values([r.p_value for r in tested], correction))
    }
