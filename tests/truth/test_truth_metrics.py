"""Performance, calibration and CBPE statistics against scikit-learn, statsmodels
and direct formulas on the same data. Tolerances are stated per assertion."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)
from statsmodels.stats.proportion import proportion_confint

from detectors.calibration import (
    ScoreHistogram,
    bin_scores,
    calibration_statistics,
    reference_calibration,
)
from detectors.cbpe import CalibrationMap, PredictionHistogram, estimate_performance
from detectors.performance import (
    BinaryCounts,
    MulticlassCounts,
    RegressionSums,
    auc_binning_error,
    binary_metrics,
    histogram_auc,
    multiclass_metrics,
    reference_performance,
    regression_metrics,
    wilson,
)

EXACT = 1e-12  # same quantity, different summation order


def _binary_data(seed: int, n: int = 4000, grid: bool = False):
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 3, n)
    if grid:  # one distinct score per fine bin: binned AUC is exact
        scores = (np.floor(scores * 1000) + 0.5) / 1000
    truth = rng.random(n) < 1 / (1 + np.exp(-(0.4 + 1.3 * np.log(scores / (1 - scores)))))
    predicted = scores >= 0.4
    return scores, truth, predicted


def _binary_aggregates(scores, truth, predicted):
    counts, hist = BinaryCounts(), ScoreHistogram()
    counts.add(truth, predicted, scores)
    hist.add(scores, truth)
    return counts, hist


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_equal_sklearn(seed):
    scores, truth, predicted = _binary_data(seed)
    counts, hist = _binary_aggregates(scores, truth, predicted)
    metrics = binary_metrics(counts, hist)
    assert metrics["accuracy"].value == pytest.approx(accuracy_score(truth, predicted), abs=EXACT)
    assert metrics["precision"].value == pytest.approx(precision_score(truth, predicted), abs=EXACT)
    assert metrics["recall"].value == pytest.approx(recall_score(truth, predicted), abs=EXACT)
    assert metrics["f1"].value == pytest.approx(f1_score(truth, predicted), abs=EXACT)
    assert metrics["log_loss"].value == pytest.approx(log_loss(truth, scores), rel=1e-12)
    # ROC AUC on 0.001-wide bins: within the documented binning bound of the exact value.
    bound = auc_binning_error(hist.positives, hist.negatives)
    assert bound < 2e-3
    assert abs(metrics["roc_auc"].value - roc_auc_score(truth, scores)) <= bound
    for estimate in metrics.values():
        assert estimate.lower <= estimate.value <= estimate.upper


def test_auc_exact_when_bins_hold_single_scores_and_delong_matches_direct_formula():
    scores, truth, _ = _binary_data(5, n=1500, grid=True)
    _, hist = _binary_aggregates(scores, truth, truth)
    estimate = histogram_auc(hist.positives, hist.negatives)
    assert estimate.value == pytest.approx(roc_auc_score(truth, scores), abs=EXACT)
    # DeLong (1988) on the raw pairs: structural components and their variances.
    pos, neg = scores[truth], scores[~truth]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    # The interval is DeLong's widened by the binning bound (the grid's ties may be real ones).
    assert estimate.upper - estimate.value == pytest.approx(1.959963984540054 * se + estimate.error, rel=1e-9)
    assert estimate.error == pytest.approx(auc_binning_error(hist.positives, hist.negatives), rel=1e-12)


def test_wilson_interval_equals_statsmodels():
    for successes, n in [(0, 10), (3, 10), (450, 1000), (999, 1000)]:
        low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
        estimate = wilson(successes, n)
        assert (estimate.lower, estimate.upper) == pytest.approx((low, high), abs=1e-12)


def test_multiclass_metrics_equal_sklearn_macro():
    rng = np.random.default_rng(3)
    truth = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1])
    noisy = rng.random(3000) < 0.35
    predicted = np.where(noisy, rng.choice(["a", "b", "c", "e"], 3000), truth)
    counts = MulticlassCounts()
    counts.add(list(truth[:1000]), list(predicted[:1000]))
    counts.add(list(truth[1000:]), list(predicted[1000:]))
    metrics = multiclass_metrics(counts)
    assert metrics["accuracy"].value == pytest.approx(accuracy_score(truth, predicted), abs=EXACT)
    for name, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        expected = fn(truth, predicted, average="macro", zero_division=0)
        assert metrics[name].value == pytest.approx(expected, abs=EXACT), name
        assert metrics[name].lower < metrics[name].value < metrics[name].upper


def test_multiclass_state_round_trip_and_class_cap():
    counts = MulticlassCounts(max_classes=3)
    counts.add(["a", "b", "c", "d"], ["a", "b", "d", "a"])
    assert counts.classes == ["a", "b", "__other__"]
    restored = MulticlassCounts.from_state(counts.to_state())
    assert restored.classes == counts.classes and np.array_equal(restored.matrix, counts.matrix)


def test_regression_metrics_equal_sklearn_and_merge():
    rng = np.random.default_rng(4)
    truth = rng.normal(10, 3, 5000)
    predicted = truth + rng.standard_t(5, 5000)
    whole, first, second = RegressionSums(), RegressionSums(), RegressionSums()
    whole.add(truth, predicted)
    first.add(truth[:1234], predicted[:1234])
    second.add(truth[1234:], predicted[1234:])
    merged = RegressionSums(**{k: first.to_state()[k] + second.to_state()[k] for k in whole.to_state()})
    for sums in (whole, merged):
        metrics = regression_metrics(sums)
        assert metrics["mae"].value == pytest.approx(mean_absolute_error(truth, predicted), rel=1e-12)
        assert metrics["rmse"].value == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)), rel=1e-12)
        assert metrics["rmse"].lower < metrics["rmse"].value < metrics["rmse"].upper


def test_binary_aggregates_merge_exactly():
    scores, truth, predicted = _binary_data(6)
    counts, hist = _binary_aggregates(scores, truth, predicted)
    a_counts, a_hist = _binary_aggregates(scores[:1000], truth[:1000], predicted[:1000])
    b_counts, b_hist = _binary_aggregates(scores[1000:], truth[1000:], predicted[1000:])
    whole = binary_metrics(counts, hist)
    merged = binary_metrics(a_counts.merge(b_counts), ScoreHistogram.from_state(a_hist.merge(b_hist).to_state()))
    for name in whole:
        assert merged[name] == pytest.approx(whole[name], rel=1e-12, nan_ok=True), name


# -- calibration ------------------------------------------------------------------------


def _ece_direct(scores, truth, groups):
    ece = 0.0
    for g in np.unique(groups):
        members = groups == g
        ece += members.mean() * abs(scores[members].mean() - truth[members].mean())
    return ece


@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_equals_sklearn_and_direct_formulas(seed):
    scores, truth, _ = _binary_data(seed, n=6000)
    scores[:5] = [0.0, 0.1, 0.3, 0.7, 1.0]  # scores on bin edges
    hist = ScoreHistogram()
    hist.add(scores, truth)
    stats = calibration_statistics(hist)

    prob_true, prob_pred = calibration_curve(truth, scores, n_bins=10, strategy="uniform")
    curve = np.array(stats["reliability_curve"])
    assert curve[:, 1] == pytest.approx(prob_true, abs=EXACT)
    assert curve[:, 0] == pytest.approx(prob_pred, abs=EXACT)
    assert stats["brier_score"] == pytest.approx(brier_score_loss(truth, scores), rel=1e-12)

    # Equal-width bins as calibration_curve draws them: (a, b], the first closed.
    width_bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], scores, side="left")
    assert stats["ece_equal_width"] == pytest.approx(_ece_direct(scores, truth, width_bins), abs=EXACT)

    # Equal mass, documented rule on raw data: a 0.001-wide bin joins the mass bin of
    # its first event in score order.
    order = np.argsort(scores, kind="stable")
    fine = bin_scores(scores[order])
    first_rank = np.searchsorted(fine, fine, side="left")
    mass_bins = np.empty(len(scores), np.int64)
    mass_bins[order] = 10 * first_rank // len(scores)
    assert stats["ece_equal_mass"] == pytest.approx(_ece_direct(scores, truth, mass_bins), abs=EXACT)
    # ...and within 0.01 of the textbook definition (10 equal-count groups of sorted scores).
    textbook = np.empty(len(scores), np.int64)
    textbook[order] = np.arange(len(scores)) * 10 // len(scores)
    assert abs(stats["ece_equal_mass"] - _ece_direct(scores, truth, textbook)) < 0.01

    # Murphy decomposition over the same equal-width bins.
    base = truth.mean()
    rel = sum((width_bins == k).sum() * (scores[width_bins == k].mean() - truth[width_bins == k].mean()) ** 2
              for k in np.unique(width_bins)) / len(scores)
    res = sum((width_bins == k).sum() * (truth[width_bins == k].mean() - base) ** 2
              for k in np.unique(width_bins)) / len(scores)
    assert stats["brier_reliability"] == pytest.approx(rel, abs=EXACT)
    assert stats["brier_resolution"] == pytest.approx(res, abs=EXACT)
    assert stats["brier_uncertainty"] == pytest.approx(base * (1 - base), abs=EXACT)
    # The identity holds up to within-bin terms, small for 0.1-wide bins.
    assert abs(stats["brier_reliability"] - stats["brier_resolution"] + stats["brier_uncertainty"] - stats["brier_score"]) < 0.01

    # Logistic recalibration vs scikit-learn on the raw logits (binning tolerance 2e-3).
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    logits = np.log(clipped / (1 - clipped))
    model = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logits[:, None], truth)
    assert stats["slope"] == pytest.approx(model.coef_[0, 0], abs=2e-3)
    assert stats["intercept"] == pytest.approx(model.intercept_[0], abs=2e-3)


def test_calibrated_scores_have_unit_slope_and_small_ece():
    rng = np.random.default_rng(9)
    scores = rng.random(50_000)
    hist = ScoreHistogram()
    hist.add(scores, rng.random(50_000) < scores)
    stats = calibration_statistics(hist)
    assert stats["slope"] == pytest.approx(1.0, abs=0.05)
    assert stats["intercept"] == pytest.approx(0.0, abs=0.05)
    assert stats["ece_equal_width"] < 0.01 and stats["ece_equal_mass"] < 0.01


def test_bad_scores_are_counted_not_binned():
    hist = ScoreHistogram()
    hist.add(np.array([0.5, np.nan, 1.5, -0.1]), np.array([True, False, True, False]))
    assert (hist.n, hist.invalid) == (1, 3)
    assert np.isnan(calibration_statistics(ScoreHistogram())["ece_equal_width"])


def test_reference_functions_compare_labels_as_strings():
    scores, truth, predicted = _binary_data(2, n=2000)
    as_ints = reference_performance(truth.astype(int), predicted.astype(int), scores, "binary")
    as_strings = reference_performance(
        np.where(truth, "1", "0").astype(object), np.where(predicted, "1", "0").astype(object), scores, "binary"
    )
    assert as_ints == pytest.approx(as_strings)
    assert as_ints["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=EXACT)
    calibration = reference_calibration(truth.astype(float), scores, "binary")
    assert calibration["brier_score"] == pytest.approx(brier_score_loss(truth, scores), rel=1e-12)
    assert set(calibration) >= {"ece_equal_width", "reliability_curve", "cbpe_map"}
    regression = reference_performance(np.arange(5.0), np.arange(5.0) + 1, None, "regression")
    assert regression == pytest.approx({"mae": 1.0, "rmse": 1.0})


# -- CBPE -------------------------------------------------------------------------------


def test_cbpe_estimate_of_a_calibrated_model_is_close_to_realised():
    """Calibrated model, covariate shift between baseline and window (scores move):
    the estimate stays within 0.02 of realised accuracy and ROC AUC, and the realised
    accuracy lies in the estimate's 95 % interval for at least 18 of 20 windows."""
    rng = np.random.default_rng(11)
    reference_scores = rng.beta(2, 2, 50_000)
    reference = ScoreHistogram()
    reference.add(reference_scores, rng.random(50_000) < reference_scores)
    cmap = CalibrationMap.from_dict(CalibrationMap.fit(reference).to_dict())
    inside = 0
    for _ in range(20):
        scores = rng.beta(3, 1.5, 5000)  # shifted towards high scores
        truth = rng.random(5000) < scores
        predicted = scores >= 0.5
        window = PredictionHistogram()
        window.add(scores, predicted)
        estimate = estimate_performance(window, cmap)
        realised_accuracy = accuracy_score(truth, predicted)
        assert abs(estimate["accuracy"].value - realised_accuracy) < 0.02
        assert abs(estimate["roc_auc"].value - roc_auc_score(truth, scores)) < 0.02
        assert abs(estimate["precision"].value - precision_score(truth, predicted)) < 0.02
        inside += estimate["accuracy"].lower <= realised_accuracy <= estimate["accuracy"].upper
    assert inside >= 18


def test_cbpe_misses_concept_drift_by_design():
    """When P(y | score) changes, CBPE (assumption 1) keeps estimating the old accuracy."""
    rng = np.random.default_rng(12)
    reference_scores = rng.random(20_000)
    reference = ScoreHistogram()
    reference.add(reference_scores, rng.random(20_000) < reference_scores)
    cmap = CalibrationMap.fit(reference)
    scores = rng.random(5000)
    truth = rng.random(5000) < 1 - scores  # the concept flipped
    window = PredictionHistogram()
    window.add(scores, scores >= 0.5)
    assert estimate_performance(window, cmap)["accuracy"].value > 0.7
    assert accuracy_score(truth, scores >= 0.5) < 0.3


def test_reference_performance_thresholds_probability_predictions():
    scores, truth, _ = _binary_data(4, n=1000)
    result = reference_performance(truth.astype(int), scores, scores, "binary", decision_threshold=0.6)
    assert result["accuracy"] == pytest.approx(accuracy_score(truth, scores >= 0.6), abs=EXACT)
