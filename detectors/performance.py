"""Realised performance from mergeable aggregates, with 95 % confidence intervals.

Aggregates (:mod:`detectors.performance_counts`, re-exported here):
:class:`BinaryCounts` (confusion counts, log-loss sums, and positives/negatives
per bin of the model's :class:`~detectors.score_bins.ScoreBins` for ROC AUC),
:class:`MulticlassCounts`, :class:`RegressionSums`. Without rank counts (state
from before adaptive bins) ROC AUC comes from the 0.001-wide bins of a
:class:`~detectors.calibration.ScoreHistogram`.

Intervals (``z = 1.96``):

* accuracy, precision, recall: Wilson score interval on the proportion.
* F1 and macro-averaged multiclass precision/recall/F1: percentile interval of a
  parametric bootstrap that redraws the confusion matrix from a multinomial with
  the observed cell shares (500 draws, fixed seed: deterministic).
* ROC AUC: DeLong's variance computed on the binned scores (exact for the binned
  data). Binning treats scores sharing a bin as ties, which moves the AUC by at
  most :func:`auc_binning_error` (``0.5 * sum_b pos_b neg_b / (P N)``); the estimate
  carries that bound as ``error`` and the interval is AUC ± (z·SE + error), clipped
  to [0, 1].
* log loss, MAE: mean ± z·sd/sqrt(n). RMSE: the interval of the MSE (mean ± z·sd of
  e^2) mapped through the square root.

Classification labels are compared as strings (see
:func:`~detectors.calibration.canonical_labels`); log loss clips probabilities to
``[eps, 1 - eps]`` with float64 ``eps`` like scikit-learn.

>>> import numpy as np
>>> counts = BinaryCounts()
>>> counts.add(np.array([True, True, False, False]), np.array([True, False, False, True]))
>>> metrics = binary_metrics(counts)
>>> metrics["accuracy"].value, round(metrics["accuracy"].lower, 4)
(0.5, 0.15)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from detectors.calibration import ScoreHistogram, canonical_labels
from detectors.performance_counts import BinaryCounts, MulticlassCounts, RegressionSums
from detectors.score_bins import ScoreBins

__all__ = [
    "BinaryCounts",
    "Estimate",
    "MulticlassCounts",
    "RegressionSums",
    "auc_binning_error",
    "binary_metrics",
    "histogram_auc",
    "multiclass_metrics",
    "reference_performance",
    "regression_metrics",
    "wilson",
]

Z = 1.959963984540054
_BOOTSTRAP_DRAWS = 500
NAN = float("nan")


class Estimate(NamedTuple):
    """A statistic with its 95 % interval (bounds NaN when undefined).

    ``error``: a bound on the approximation in ``value`` from working on aggregates
    (ROC AUC: the binning error), already folded into the interval; NaN when none.
    """

    value: float
    lower: float = NAN
    upper: float = NAN
    error: float = NAN


def wilson(successes: float, n: float, z: float = Z) -> Estimate:
    """Proportion ``successes / n`` with its Wilson score interval."""
    if n <= 0:
        return Estimate(NAN)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Estimate(float(p), float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def _mean_interval(total: float, total_sq: float, n: float) -> Estimate:
    if n <= 0:
        return Estimate(NAN)
    mean = total / n
    if n < 2:
        return Estimate(float(mean))
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = Z * np.sqrt(variance / n)
    return Estimate(float(mean), float(mean - half), float(mean + half))


def histogram_auc(positives: np.ndarray, negatives: np.ndarray, mixed: np.ndarray | None = None) -> Estimate:
    """ROC AUC of binned scores (ties count 1/2) with DeLong's 95 % interval.

    ``positives``/``negatives`` are (possibly fractional) counts per score bin in
    increasing score order; ``mixed`` marks the bins that may hold distinct scores
    (default: all). The estimate's ``error`` is :func:`auc_binning_error`, and the
    interval is widened by it: it covers the AUC of the unbinned scores.
    """
    positives = np.asarray(positives, np.float64)
    negatives = np.asarray(negatives, np.float64)
    n_pos, n_neg = positives.sum(), negatives.sum()
    if n_pos <= 0 or n_neg <= 0:
        return Estimate(NAN)
    neg_below = np.cumsum(negatives) - negatives
    pos_above = n_pos - np.cumsum(positives)
    v10 = (neg_below + 0.5 * negatives) / n_neg  # per positive in the bin
    v01 = (pos_above + 0.5 * positives) / n_pos  # per negative in the bin
    auc = float(np.sum(positives * v10) / n_pos)
    error = auc_binning_error(positives, negatives, mixed)
    if n_pos < 2 or n_neg < 2:
        return Estimate(auc, error=error)
    s10 = np.sum(positives * (v10 - auc) ** 2) / (n_pos - 1)
    s01 = np.sum(negatives * (v01 - auc) ** 2) / (n_neg - 1)
    half = Z * float(np.sqrt(s10 / n_pos + s01 / n_neg)) + error
    return Estimate(auc, max(0.0, auc - half), min(1.0, auc + half), error)


def auc_binning_error(positives: np.ndarray, negatives: np.ndarray, mixed: np.ndarray | None = None) -> float:
    """Largest possible difference between the binned and the exact ROC AUC.

    A positive and a negative in one bin count 1/2; the exact AUC counts them 0, 1/2
    or 1. Bins not in ``mixed`` hold one distinct score (true ties, 1/2 either way).
    """
    n_pos, n_neg = float(np.sum(positives)), float(np.sum(negatives))
    if n_pos <= 0 or n_neg <= 0:
        return NAN
    pairs = np.asarray(positives, np.float64) * np.asarray(negatives, np.float64)
    if mixed is not None:
        pairs = pairs[np.asarray(mixed, bool)]
    return float(0.5 * np.sum(pairs) / (n_pos * n_neg))


def _bootstrap(cells: np.ndarray, statistic, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over multinomial redraws of ``cells``."""
    n = int(cells.sum())
    if n == 0:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cells.ravel() / n, size=_BOOTSTRAP_DRAWS).reshape((-1, *cells.shape))
    values = statistic(draws)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return NAN, NAN
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def _f1(tp, fp, fn):
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * tp / (2 * tp + fp + fn)


def binary_metrics(counts: BinaryCounts, scores: ScoreHistogram | None = None) -> dict[str, Estimate]:
    """Accuracy, precision, recall, F1, log loss and (with ``scores``) ROC AUC."""
    if counts.n == 0:
        return {}
    cells = np.array([counts.tp, counts.fp, counts.fn, counts.tn], np.float64)
    f1 = _f1(cells[0], cells[1], cells[2])
    low, high = _bootstrap(cells, lambda d: _f1(d[:, 0], d[:, 1], d[:, 2]))
    result = {
        "accuracy": wilson(counts.tp + counts.tn, counts.n),
        "precision": wilson(counts.tp, counts.tp + counts.fp),
        "recall": wilson(counts.tp, counts.tp + counts.fn),
        "f1": Estimate(float(f1), low, high) if np.isfinite(f1) else Estimate(NAN),
    }
    if counts.n_scored:
        result["log_loss"] = _mean_interval(counts.loss_sum, counts.loss_sq_sum, counts.n_scored)
    if counts.ranks is not None and counts.ranks.n:
        result["roc_auc"] = histogram_auc(counts.ranks.positives, counts.ranks.negatives, counts.ranks.mixed)
    elif scores is not None and scores.n:
        result["roc_auc"] = histogram_auc(scores.positives, scores.negatives)
    return result


def _macro(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Macro precision, recall, F1 of a stack of confusion matrices (like scikit-learn:
    a class with no predictions has precision 0, with no labels recall 0)."""
    tp = np.diagonal(matrices, axis1=-2, axis2=-1).astype(np.float64)
    predicted = matrices.sum(axis=-2)
    actual = matrices.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(actual > 0, tp / np.maximum(actual, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1), 0.0)
    return precision.mean(axis=-1), recall.mean(axis=-1), f1.mean(axis=-1)


def multiclass_metrics(counts: MulticlassCounts) -> dict[str, Estimate]:
    """Accuracy and macro-averaged precision, recall and F1."""
    if counts.n == 0:
        return {}
    matrix = counts.matrix
    values = _macro(matrix[None])
    result = {"accuracy": wilson(float(np.trace(matrix)), counts.n)}
    for i, name in enumerate(("precision", "recall", "f1")):
        low, high = _bootstrap(matrix.astype(np.float64), lambda d, i=i: _macro(d)[i], seed=i)
        result[name] = Estimate(float(values[i][0]), low, high)
    return result


def regression_metrics(sums: RegressionSums) -> dict[str, Estimate]:
    """MAE and RMSE with normal-approximation intervals."""
    if sums.n == 0:
        return {}
    mse = _mean_interval(sums.sq_sum, sums.quad_sum, sums.n)
    rmse = Estimate(
        float(np.sqrt(mse.value)),
        float(np.sqrt(max(0.0, mse.lower))) if np.isfinite(mse.lower) else NAN,
        float(np.sqrt(mse.upper)) if np.isfinite(mse.upper) else NAN,
    )
    return {"mae": _mean_interval(sums.abs_sum, sums.sq_sum, sums.n), "rmse": rmse}


def reference_performance(
    y_true: Any,
    y_pred: Any,
    y_score: Any | None,
    task: str,
    *,
    positive_class: str = "1",
    decision_threshold: float = 0.5,
    bins: ScoreBins | None = None,
) -> dict[str, float]:
    """Baseline performance (point values), computed by the same code as live windows.

    Rows whose label is missing are left out. A binary ``y_pred`` holding
    probabilities (numbers not all 0/1) is thresholded at ``decision_threshold``,
    as live events that log a score as their prediction are. ROC AUC is counted on
    ``bins`` (default: bins from these scores, as the baseline stores them).
    """
    if task == "regression":
        sums = RegressionSums()
        sums.add(np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64))
        return {name: est.value for name, est in regression_metrics(sums).items()}
    truth = canonical_labels(y_true)
    predictions = canonical_labels(y_pred)
    known = [i for i, t in enumerate(truth) if t is not None]
    truth = [truth[i] for i in known]
    predictions = [predictions[i] for i in known]
    if task == "multiclass":
        counts = MulticlassCounts()
        counts.add(truth, [p if p is not None else "__missing__" for p in predictions])
        return {name: est.value for name, est in multiclass_metrics(counts).items()}
    actual = np.array([t == positive_class for t in truth], dtype=bool)
    raw_pred = np.asarray(y_pred)
    if raw_pred.dtype.kind == "f" and np.any((raw_pred > 0) & (raw_pred < 1)):
        predicted = raw_pred[known] >= decision_threshold
    else:
        predicted = np.array([p == positive_class for p in predictions], dtype=bool)
    scores = None if y_score is None else np.asarray(y_score, np.float64)[known]
    if scores is not None and bins is None:
        bins = ScoreBins.from_reference(scores)
    counts = BinaryCounts()
    counts.add(actual, predicted, scores, bins)
    return {name: est.value for name, est in binary_metrics(counts).items()}
