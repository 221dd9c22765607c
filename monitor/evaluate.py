"""Turn a closed window aggregate into a :class:`~monitor.results.WindowReport`.

For every feature the window's counts (and bounded sample) are set beside the
baseline's, scored by the configured or automatically chosen method from
:data:`detectors.registry.REGISTRY`, and decided across the model's features with
the configured p-value correction.
"""

from __future__ import annotations

import time

import numpy as np

from detectors import decide
from detectors.base import DriftResult, FeatureData
from detectors.budget import Budget
from detectors.decision import drift_share, weighted_drift_score
from detectors.multivariate import evaluate as evaluate_multivariate
from detectors.noise import with_floors
from detectors.registry import REGISTRY, choose_method
from monitor.baseline import FeatureProfile
from monitor.config import DriftSettings, ModelSettings
from monitor.results import PREDICTION, PREDICTION_SCORE, WindowKey, WindowReport
from monitor.windows import Layout, WindowAggregate

__all__ = ["budget_for", "evaluate_window", "method_for"]


def budget_for(drift: DriftSettings, window_seconds: float) -> Budget | None:
    """The false-alarm budget of a model whose windows last ``window_seconds`` (None: no budget)."""
    if drift.false_alarms_per_day is None:
        return None
    return Budget(drift.false_alarms_per_day, 86_400.0 / window_seconds, drift.segments_per_model, drift.alert_windows)


# Values keep the key objects alive, so their ids cannot be reused while cached.
_METHOD_CACHE: dict[tuple[int, int, int], tuple[str, float, object]] = {}


def method_for(profile: FeatureProfile, drift: DriftSettings, model: ModelSettings | None) -> tuple[str, float]:
    """The method and threshold used for a feature: feature override, global setting, automatic.

    Settings and baselines do not change while the daemon runs, so the choice is
    cached (bounded by models x features).
    """
    key = (id(profile), id(drift), id(model))
    cached = _METHOD_CACHE.get(key)
    if cached is None:
        if len(_METHOD_CACHE) > 100_000:
            _METHOD_CACHE.clear()
        method, threshold = _method_for(profile, drift, model)
        cached = _METHOD_CACHE[key] = (method, threshold, (profile, drift, model))
    return cached[0], cached[1]


def _method_for(profile: FeatureProfile, drift: DriftSettings, model: ModelSettings | None) -> tuple[str, float]:
    override = model.features.get(profile.name) if model is not None else None
    configured = drift.numeric_method if profile.kind == "numeric" else drift.categorical_method
    method = override.method if override is not None and override.method else configured
    if method == "auto":
        n_distinct = len(np.unique(profile.sample)) if profile.kind == "numeric" else None
        method = choose_method(profile.kind, n_distinct)
    if override is not None and override.threshold is not None:
        threshold = override.threshold
    else:
        threshold = drift.thresholds.get(method, REGISTRY[method].default_threshold)
    return method, float(threshold)


def _unscorable(spec, data: FeatureData) -> bool:
    """Whether a feature has nothing to score in this window (its result is NaN, never flagged)."""
    if spec.needs == "sample":
        return data.cur_sample is None or len(data.cur_sample) == 0
    return float(np.sum(data.cur_counts)) == 0


def _score_all(items: list[tuple[str, str, float, FeatureData]]) -> list[DriftResult]:
    """Score every feature, one vectorised ``score_all`` call per method, in input order."""
    results: list[DriftResult | None] = [None] * len(items)
    by_method: dict[str, list[int]] = {}
    for i, (name, method, threshold, data) in enumerate(items):
        if _unscorable(REGISTRY[method], data):
            results[i] = DriftResult(method, name, float("nan"), None, threshold, False)
        else:
            by_method.setdefault(method, []).append(i)
    for method, members in by_method.items():
        scores = REGISTRY[method].score_all([items[i][3] for i in members])
        for i, score in zip(members, scores):
            name, _, threshold, _ = items[i]
            results[i] = score.result(method, name, threshold)
    return results  # type: ignore[return-value]


def _finite_column(sample: np.ndarray, column: int) -> np.ndarray:
    values = sample[:, column]
    return values[~np.isnan(values)]


def evaluate_window(
    key: WindowKey,
    start: float,
    size: float,
    aggregate: WindowAggregate,
    layout: Layout,
    drift: DriftSettings,
    model: ModelSettings | None,
    min_events: int,
) -> WindowReport:
    """Statistics of a closed window against its baseline."""
    baseline = layout.baseline
    report = WindowReport(key=key, window_start=start, window_end=start + size, n_events=aggregate.n, closed_at=time.time())
    if aggregate.n == 0:
        return report
    raw: list[tuple[str, str, float, FeatureData]] = []
    n_numeric = len(layout.numeric_names)
    for j, name in enumerate(layout.numeric_names):
        profile = baseline.features[name]
        lo, hi = layout.numeric_offsets[j], layout.numeric_offsets[j + 1]
        counts = aggregate.numeric_counts[lo:hi]
        report.missing_ratio[name] = float(aggregate.numeric_missing[j] / aggregate.n)
        report.nonfinite_ratio[name] = float(aggregate.numeric_nonfinite[j] / aggregate.n)
        report.baseline_missing_ratio[name] = profile.missing_ratio
        report.feature_counts[name] = counts.tolist()
        report.feature_kinds[name] = "numeric"
        if aggregate.n < min_events:
            continue
        method, threshold = method_for(profile, drift, model)
        data = FeatureData(
            "numeric", profile.counts, counts, profile.sample, _finite_column(aggregate.sample, j), profile.std,
        )
        raw.append((name, method, threshold, data))
    for j, name in enumerate(layout.categorical_names):
        profile = baseline.features[name]
        lo, hi = layout.categorical_offsets[j], layout.categorical_offsets[j + 1]
        counts = aggregate.categorical_counts[lo:hi]
        seen = counts.sum()
        report.missing_ratio[name] = float(aggregate.categorical_missing[j] / aggregate.n)
        report.baseline_missing_ratio[name] = profile.missing_ratio
        report.unseen_ratio[name] = float(counts[-1] / seen) if seen else 0.0
        report.unseen_expected_ratio[name] = float(profile.unseen_estimate or 0.0)
        report.feature_counts[name] = counts.tolist()
        report.feature_kinds[name] = "categorical"
        if aggregate.n < min_events:
            continue
        method, threshold = method_for(profile, drift, model)
        data = FeatureData("categorical", profile.counts, counts, unseen_bin=profile.unseen_bin,
                           expected_unseen=profile.unseen_estimate)
        raw.append((name, method, threshold, data))
    novelty_threshold = drift.thresholds.get("unseen_share")
    scored = _score_all(raw)
    outputs = _output_drift(aggregate, layout, drift, model, n_numeric) if aggregate.n >= min_events else []
    multivariate = drift.multivariate_method != "none" and n_numeric >= 2 and layout.reference_matrix is not None
    # The window's tests share its budget level (union bound, detectors/budget.py).
    p_tests = sum(r.p_value is not None for r in scored) + sum(r.novelty_p_value is not None for r in scored)
    tests = len(scored) + sum(r.novelty_p_value is not None for r in scored) + len(outputs) + int(multivariate)
    budget = budget_for(drift, size)
    level = budget.test_level(tests) if budget is not None else None
    bh_alpha = min(drift.alpha, budget.bh_level(p_tests, tests)) if budget is not None else drift.alpha
    test_alpha = min(drift.alpha, level) if level is not None else drift.alpha
    report.features = decide(with_floors(scored, [item[3] for item in raw], level), correction=drift.correction,
                             alpha=bh_alpha, novelty_threshold=novelty_threshold)
    report.drift_share = drift_share(report.features)
    report.drift_score = weighted_drift_score(report.features, baseline.importances)
    report.model_drifted = bool(report.features) and report.drift_share >= drift.drift_share_threshold
    if aggregate.n >= min_events:
        results, data = zip(*outputs) if outputs else ((), ())
        report.prediction = decide(with_floors(results, data, level), correction="none",
                                   alpha=test_alpha, novelty_threshold=novelty_threshold)
        if multivariate:
            report.multivariate = [
                evaluate_multivariate(
                    drift.multivariate_method, layout.reference_matrix, aggregate.sample[:, :n_numeric],
                    threshold=drift.thresholds.get(drift.multivariate_method), alpha=test_alpha, seed=0,
                )
            ]
    return report


def _output_drift(
    aggregate: WindowAggregate, layout: Layout, drift: DriftSettings, model: ModelSettings | None, n_numeric: int
) -> list[tuple[DriftResult, FeatureData]]:
    """Prediction drift (class or value distribution) and score drift (positive-class probability), with their data."""
    baseline = layout.baseline
    results: list[tuple[str, str, float, FeatureData]] = []
    prediction = baseline.prediction
    if prediction is not None and aggregate.prediction_counts.sum() > 0:
        method, threshold = method_for(prediction, drift, model)
        if prediction.kind == "numeric":
            data = FeatureData("numeric", prediction.counts, aggregate.prediction_counts, prediction.sample,
                               _finite_column(aggregate.sample, n_numeric), prediction.std)
        else:
            data = FeatureData("categorical", prediction.counts, aggregate.prediction_counts,
                               unseen_bin=prediction.unseen_bin, expected_unseen=prediction.unseen_estimate)
        results.append((PREDICTION, method, threshold, data))
    score = baseline.score
    if score is not None and aggregate.score_counts.sum() > 0:
        method, threshold = method_for(score, drift, model)
        data = FeatureData("numeric", score.counts, aggregate.score_counts, score.sample,
                           _finite_column(aggregate.sample, n_numeric + 1), score.std)
        results.append((PREDICTION_SCORE, method, threshold, data))
    return list(zip(_score_all(results), [item[3] for item in results]))
