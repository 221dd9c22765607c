"""Realised performance from mergeable aggregates, with 95 % confidence intervals.

Aggregates (all mergeable by addition, all JSON-safe through ``to_state``):

* :class:`BinaryCounts`: the 2x2 confusion counts around the positive class and the
  log-loss sums; ROC AUC comes from the positives/negatives per fine score bin of a
  :class:`~detectors.calibration.ScoreHistogram`.
* :class:`MulticlassCounts`: a confusion matrix over up to ``max_classes`` classes.
* :class:`RegressionSums`: count, sums of |e|, e^2 and e^4.

Intervals (``z = 1.96``):

* accuracy, precision, recall: Wilson score interval on the proportion.
* F1 and macro-averaged multiclass precision/recall/F1: percentile interval of a
  parametric bootstrap that redraws the confusion matrix from a multinomial with
  the observed cell shares (500 draws, fixed seed: deterministic).
* ROC AUC: DeLong's variance computed on the binned scores (exact for the binned
  data); AUC ± z·SE clipped to [0, 1]. Binning treats scores sharing a 0.001-wide
  bin as ties, which moves the AUC by at most :func:`auc_binning_error`
  (``0.5 * sum_b pos_b neg_b / (P N)``).
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

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from detectors.calibration import ScoreHistogram, canonical_labels

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
_EPS = float(np.finfo(np.float64).eps)
_BOOTSTRAP_DRAWS = 500
NAN = float("nan")


class Estimate(NamedTuple):
    """A statistic with its 95 % interval (bounds NaN when undefined)."""

    value: float
    lower: float = NAN
    upper: float = NAN


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


@dataclass(slots=True)
class BinaryCounts:
    """Confusion counts around the positive class, plus log-loss sums."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    loss_sum: float = 0.0
    loss_sq_sum: float = 0.0
    n_scored: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def add(self, actual: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None = None) -> None:
        """``actual``/``predicted``: True where the label / prediction is the positive
        class; ``scores``: P(positive), NaN where unknown (left out of log loss)."""
        actual = np.asarray(actual, dtype=bool)
        predicted = np.asarray(predicted, dtype=bool)
        self.tp += int(np.sum(actual & predicted))
        self.fp += int(np.sum(~actual & predicted))
        self.fn += int(np.sum(actual & ~predicted))
        self.tn += int(np.sum(~actual & ~predicted))
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            known = np.isfinite(scores)
            p = np.clip(scores[known], _EPS, 1 - _EPS)
            loss = -np.where(actual[known], np.log(p), np.log1p(-p))
            self.loss_sum += float(loss.sum())
            self.loss_sq_sum += float(np.sum(loss * loss))
            self.n_scored += int(known.sum())

    def merge(self, other: BinaryCounts) -> BinaryCounts:
        return BinaryCounts(*(a + b for a, b in zip(self.to_state().values(), other.to_state().values())))

    def to_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BinaryCounts:
        return cls(**state)


@dataclass(slots=True)
class MulticlassCounts:
    """A confusion matrix (rows: label, columns: prediction) over interned classes.

    Classes past ``max_classes`` share the last slot, ``"__other__"``.
    """

    max_classes: int = 50
    classes: list[str] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    @property
    def n(self) -> int:
        return int(self.matrix.sum())

    def _codes(self, labels: list[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        for label in labels:
            if label not in index:
                if len(self.classes) < self.max_classes - 1:
                    index[label] = len(self.classes)
                    self.classes.append(label)
                else:
                    if "__other__" not in index:
                        index["__other__"] = len(self.classes)
                        self.classes.append("__other__")
                    index[label] = index["__other__"]
        k = len(self.classes)
        if self.matrix.shape[0] < k:
            grown = np.zeros((k, k), np.int64)
            grown[: self.matrix.shape[0], : self.matrix.shape[1]] = self.matrix
            self.matrix = grown
        return np.fromiter((index[label] for label in labels), np.int64, len(labels))

    def add(self, actual: list[str], predicted: list[str]) -> None:
        rows, cols = self._codes(list(actual)), self._codes(list(predicted))
        np.add.at(self.matrix, (rows, cols), 1)

    def to_state(self) -> dict[str, Any]:
        return {"max_classes": self.max_classes, "classes": self.classes, "matrix": self.matrix.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MulticlassCounts:
        k = len(state["classes"])
        matrix = np.asarray(state["matrix"], np.int64).reshape(k, k)
        return cls(int(state["max_classes"]), list(state["classes"]), matrix)


@dataclass(slots=True)
class RegressionSums:
    """Count and power sums of the errors ``y - y_hat``."""

    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    quad_sum: float = 0.0

    def add(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        error = np.asarray(actual, np.float64) - np.asarray(predicted, np.float64)
        error = error[np.isfinite(error)]
        square = error * error
        self.n += len(error)
        self.abs_sum += float(np.abs(error).sum())
        self.sq_sum += float(square.sum())
        self.quad_sum += float(np.sum(square * square))

    def to_state(self) -> dict[str, Any]:
        return {"n": self.n, "abs_sum": self.abs_sum, "sq_sum": self.sq_sum, "quad_sum": self.quad_sum}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionSums:
        return cls(**state)


def histogram_auc(positives: np.ndarray, negatives: np.ndarray) -> Estimate:
    """ROC AUC of binned scores (ties count 1/2) with DeLong's 95 % interval.

    ``positives``/``negatives`` are (possibly fractional) counts per score bin in
    increasing score order.
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
    if n_pos < 2 or n_neg < 2:
        return Estimate(auc)
    s10 = np.sum(positives * (v10 - auc) ** 2) / (n_pos - 1)
    s01 = np.sum(negatives * (v01 - auc) ** 2) / (n_neg - 1)
    se = float(np.sqrt(s10 / n_pos + s01 / n_neg))
    return Estimate(auc, max(0.0, auc - Z * se), min(1.0, auc + Z * se))


def auc_binning_error(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Largest possible difference between the binned and the exact ROC AUC."""
    n_pos, n_neg = float(np.sum(positives)), float(np.sum(negatives))
    if n_pos <= 0 or n_neg <= 0:
        return NAN
    return float(0.5 * np.sum(np.asarray(positives, np.float64) * negatives) / (n_pos * n_neg))


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
    if scores is not None and scores.n:
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
) -> dict[str, float]:
    """Baseline performance (point values), computed by the same code as live windows.

    Rows whose label is missing are left out. A binary ``y_pred`` holding
    probabilities (numbers not all 0/1) is thresholded at ``decision_threshold``,
    as live events that log a score as their prediction are.
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
    counts = BinaryCounts()
    counts.add(actual, predicted, scores)
    histogram = None
    if scores is not None:
        histogram = ScoreHistogram()
        histogram.add(scores, actual)
    return {name: est.value for name, est in binary_metrics(counts, histogram).items()}
