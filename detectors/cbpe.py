"""Confidence-based performance estimation (CBPE) for binary classifiers.

Before labels arrive, a window's performance can be estimated from its scores
alone, if the scores are (or can be made) calibrated: an event with calibrated
probability ``q`` of the positive class is a true positive with probability ``q``
when predicted positive, and so on. CBPE sums these probabilities into an
expected confusion matrix (expected accuracy, precision, recall, F1) and an
expected ROC curve (expected ROC AUC), following NannyML's CBPE.

Assumptions (see ``docs/ground-truth.md``):

1. no concept drift: P(y | score) is the same as on the baseline data, so the
   calibration map fitted there still holds (CBPE sees covariate shift, not
   concept drift — that is what realised performance is for);
2. the calibration map is fitted on enough baseline data (isotonic regression on
   the 0.001-wide score bins, :class:`CalibrationMap`);
3. events are independent given their scores (for the interval).

The interval of expected accuracy (and precision, recall) is the spread of the
*realised* value under these assumptions: a sum of independent Bernoulli(q)
outcomes, ``± 1.96 sqrt(sum q (1 - q)) / n``. The ROC AUC interval is DeLong's on
the expected (fractional) counts.

>>> import numpy as np
>>> from detectors.calibration import ScoreHistogram
>>> reference = ScoreHistogram()
>>> rng = np.random.default_rng(0)
>>> s = rng.random(20000)
>>> reference.add(s, rng.random(20000) < s)          # a calibrated model
>>> cmap = CalibrationMap.fit(reference)
>>> window = PredictionHistogram()
>>> window.add(np.array([0.9, 0.8, 0.2, 0.1]), np.array([True, True, False, False]))
>>> estimate = estimate_performance(window, cmap)["accuracy"]
>>> round(estimate.value, 2), round(estimate.lower, 2), round(estimate.upper, 2)
(0.86, 0.53, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import isotonic_regression

from detectors.calibration import SCORE_BINS, ScoreHistogram, bin_scores
from detectors.performance import Estimate, Z, histogram_auc

__all__ = ["CalibrationMap", "PredictionHistogram", "estimate_performance"]


@dataclass(frozen=True, slots=True)
class CalibrationMap:
    """Calibrated P(positive) per fine score bin, fitted on the baseline.

    Stored run-length encoded in the baseline's calibration dict under ``cbpe_map``.
    """

    values: np.ndarray

    @classmethod
    def fit(cls, reference: ScoreHistogram) -> CalibrationMap:
        """Isotonic (monotone non-decreasing) regression of the outcome on the score bin.

        Bins without reference data take the value of the nearest occupied bin
        below (above, before the first one).
        """
        counts = (reference.positives + reference.negatives).astype(np.float64)
        occupied = np.flatnonzero(counts)
        if len(occupied) == 0:
            raise ValueError("cannot fit a calibration map without reference scores")
        fitted = isotonic_regression(reference.positives[occupied] / counts[occupied], weights=counts[occupied]).x
        position = np.searchsorted(occupied, np.arange(SCORE_BINS), side="right") - 1
        return cls(fitted[np.maximum(position, 0)])

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw scores."""
        return self.values[bin_scores(np.asarray(scores, np.float64))]

    def to_dict(self) -> dict[str, Any]:
        change = np.flatnonzero(np.diff(self.values)) + 1
        starts = np.concatenate(([0], change))
        return {"method": "isotonic", "bins": SCORE_BINS, "starts": starts.tolist(), "values": self.values[starts].tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationMap:
        if data.get("bins") != SCORE_BINS:
            raise ValueError(f"cbpe_map has {data.get('bins')} bins; this driftd uses {SCORE_BINS}")
        starts = np.asarray(data["starts"], np.int64)
        lengths = np.diff(np.concatenate((starts, [SCORE_BINS])))
        return cls(np.repeat(np.asarray(data["values"], np.float64), lengths))


@dataclass(slots=True)
class PredictionHistogram:
    """Mergeable per-window aggregate for CBPE: scored events per fine bin, split by
    whether the model predicted the positive class."""

    predicted_positive: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, np.int64))
    predicted_negative: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, np.int64))

    @property
    def n(self) -> int:
        return int(self.predicted_positive.sum() + self.predicted_negative.sum())

    def add(self, scores: np.ndarray, predicted_positive: np.ndarray) -> None:
        """Rows with a NaN or out-of-range score are skipped."""
        scores = np.asarray(scores, np.float64)
        positive = np.asarray(predicted_positive, bool)
        valid = (scores >= 0) & (scores <= 1)
        idx = bin_scores(scores[valid])
        positive = positive[valid]
        self.predicted_positive += np.bincount(idx[positive], minlength=SCORE_BINS)
        self.predicted_negative += np.bincount(idx[~positive], minlength=SCORE_BINS)

    def merge(self, other: PredictionHistogram) -> PredictionHistogram:
        return PredictionHistogram(
            self.predicted_positive + other.predicted_positive,
            self.predicted_negative + other.predicted_negative,
        )

    def to_state(self) -> dict[str, Any]:
        used = np.flatnonzero(self.predicted_positive + self.predicted_negative)
        return {
            "bins": used.tolist(),
            "positive": self.predicted_positive[used].tolist(),
            "negative": self.predicted_negative[used].tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PredictionHistogram:
        hist = cls()
        used = np.asarray(state["bins"], np.int64)
        hist.predicted_positive[used] = state["positive"]
        hist.predicted_negative[used] = state["negative"]
        return hist


def _expected_proportion(success_q: np.ndarray, weights: np.ndarray) -> Estimate:
    """Expected share of successes among ``weights`` events with success probability q."""
    n = weights.sum()
    if n <= 0:
        return Estimate(float("nan"))
    value = float(np.sum(weights * success_q) / n)
    half = Z * float(np.sqrt(np.sum(weights * success_q * (1 - success_q)))) / n
    return Estimate(value, float(max(0.0, value - half)), float(min(1.0, value + half)))


def estimate_performance(window: PredictionHistogram, calibration: CalibrationMap) -> dict[str, Estimate]:
    """Expected accuracy, precision, recall, F1 and ROC AUC of a window (binary)."""
    if window.n == 0:
        return {}
    q = calibration.values
    pos = window.predicted_positive.astype(np.float64)
    neg = window.predicted_negative.astype(np.float64)
    tp, fp = np.sum(pos * q), np.sum(pos * (1 - q))
    fn = np.sum(neg * q)  # expected true negatives enter through accuracy below
    both = pos + neg
    result = {
        # A predicted-positive event is right with probability q, a negative with 1 - q.
        "accuracy": _expected_proportion(np.concatenate((q, 1 - q)), np.concatenate((pos, neg))),
        "precision": _expected_proportion(q, pos),
        "f1": Estimate(float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn > 0 else float("nan")),
        "roc_auc": histogram_auc(both * q, both * (1 - q)),
    }
    # Recall's denominator (actual positives) is itself random; report the point value.
    result["recall"] = Estimate(float(tp / (tp + fn)) if tp + fn > 0 else float("nan"))
    return result


