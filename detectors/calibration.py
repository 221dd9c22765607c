"""Calibration of binary scores (or top-label confidences) from mergeable histograms.

Every score is put in one of :data:`SCORE_BINS` fine bins of width 0.001 over
[0, 1]. Like scikit-learn's ``calibration_curve`` a score on an edge belongs to the
bin on its left (bins are ``(a, b]``, the first is ``[0, b]``), and the fine edges
contain the 10 coarse edges exactly, so a coarse (0.1-wide) bin is the union of 100
fine bins and coarse statistics equal those computed from raw scores.

Per fine bin a :class:`ScoreHistogram` keeps positives, negatives, the sum of
scores and the sum of logits; it also keeps the exact Brier sum. From it:

* ECE, equal width: ``sum_k n_k / N * |mean score_k - positive rate_k|`` over 10
  bins of width 0.1 (exact).
* ECE, equal mass: the same over 10 bins of (about) equal count. A fine bin goes
  whole to the mass bin of its first event in score order: with ``C`` events in
  lower fine bins, to bin ``floor(10 * C / N)``. Equal to the raw-data definition
  up to events that share a fine bin across a boundary.
* Brier score (exact) and Murphy's decomposition over the 10 equal-width bins:
  reliability ``sum n_k (s_k - o_k)^2 / N``, resolution ``sum n_k (o_k - o)^2 / N``,
  uncertainty ``o (1 - o)``; ``BS = REL - RES + UNC`` up to the within-bin terms.
* Calibration slope and intercept: the logistic recalibration ``P(y=1) =
  sigmoid(intercept + slope * logit(s))`` fitted by Newton's method on the fine
  bins (each bin at its mean logit; scores clipped to [1e-7, 1 - 1e-7]).
  A calibrated model has slope 1 and intercept 0.

>>> import numpy as np
>>> hist = ScoreHistogram()
>>> hist.add(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
>>> stats = calibration_statistics(hist)
>>> round(stats["brier_score"], 4), round(stats["ece_equal_width"], 4)
(0.1581, 0.1375)
>>> stats["reliability_curve"]
[[0.1, 0.0, 1.0], [0.375, 0.5, 2.0], [0.8, 1.0, 1.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "COARSE_BINS",
    "SCORE_BINS",
    "SCORE_EDGES",
    "ScoreHistogram",
    "bin_scores",
    "calibration_statistics",
    "reference_calibration",
]

SCORE_BINS = 1000
COARSE_BINS = 10
_PER_COARSE = SCORE_BINS // COARSE_BINS


def _edges() -> np.ndarray:
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    # Make every coarse edge bit-identical to np.linspace(0, 1, 11) (calibration_curve's).
    edges[::_PER_COARSE] = np.linspace(0.0, 1.0, COARSE_BINS + 1)
    return edges


SCORE_EDGES = _edges()
_LOGIT_CLIP = 1e-7


def bin_scores(scores: np.ndarray) -> np.ndarray:
    """Fine bin index of each score in [0, 1] (``(a, b]`` bins, the first closed)."""
    return np.searchsorted(SCORE_EDGES[1:-1], scores, side="left")


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass(slots=True)
class ScoreHistogram:
    """Mergeable calibration aggregate: per fine score bin, outcomes and score sums.

    ``add`` ignores rows whose score is NaN or outside [0, 1]; they are counted in
    ``invalid``.
    """

    positives: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, np.int64))
    negatives: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, np.int64))
    score_sum: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS))
    logit_sum: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS))
    brier_sum: float = 0.0
    invalid: int = 0

    @property
    def n(self) -> int:
        return int(self.positives.sum() + self.negatives.sum())

    def add(self, scores: np.ndarray, outcomes: np.ndarray) -> None:
        """Add events: ``scores`` in [0, 1], ``outcomes`` True for the positive class."""
        scores = np.asarray(scores, dtype=np.float64)
        outcomes = np.asarray(outcomes, dtype=bool)
        valid = (scores >= 0) & (scores <= 1)  # False for NaN
        self.invalid += int(len(scores) - valid.sum())
        scores, outcomes = scores[valid], outcomes[valid]
        idx = bin_scores(scores)
        self.positives += np.bincount(idx[outcomes], minlength=SCORE_BINS)
        self.negatives += np.bincount(idx[~outcomes], minlength=SCORE_BINS)
        self.score_sum += np.bincount(idx, weights=scores, minlength=SCORE_BINS)
        self.logit_sum += np.bincount(idx, weights=_logit(scores), minlength=SCORE_BINS)
        self.brier_sum += float(np.sum((scores - outcomes) ** 2))

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        """A new histogram of both inputs' events."""
        return ScoreHistogram(
            self.positives + other.positives,
            self.negatives + other.negatives,
            self.score_sum + other.score_sum,
            self.logit_sum + other.logit_sum,
            self.brier_sum + other.brier_sum,
            self.invalid + other.invalid,
        )

    def to_state(self) -> dict[str, Any]:
        # Sparse: windows touch few of the 1000 bins when scores cluster.
        used = np.flatnonzero(self.positives + self.negatives)
        return {
            "bins": used.tolist(),
            "positives": self.positives[used].tolist(),
            "negatives": self.negatives[used].tolist(),
            "score_sum": self.score_sum[used].tolist(),
            "logit_sum": self.logit_sum[used].tolist(),
            "brier_sum": self.brier_sum,
            "invalid": self.invalid,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ScoreHistogram:
        hist = cls(brier_sum=float(state["brier_sum"]), invalid=int(state["invalid"]))
        used = np.asarray(state["bins"], dtype=np.int64)
        hist.positives[used] = state["positives"]
        hist.negatives[used] = state["negatives"]
        hist.score_sum[used] = state["score_sum"]
        hist.logit_sum[used] = state["logit_sum"]
        return hist


def _grouped_ece(group: np.ndarray, hist: ScoreHistogram, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(group, weights=hist.positives + hist.negatives, minlength=n_groups)
    positives = np.bincount(group, weights=hist.positives, minlength=n_groups)
    score_sum = np.bincount(group, weights=hist.score_sum, minlength=n_groups)
    return counts, positives, score_sum


def _ece(counts: np.ndarray, positives: np.ndarray, score_sum: np.ndarray) -> float:
    used = counts > 0
    return float(np.sum(np.abs(score_sum[used] - positives[used])) / counts.sum())


def _logistic_fit(x: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of a binomial logistic regression by Newton–Raphson."""
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(100):
        p = special.expit(design @ beta)
        gradient = design.T @ (successes - trials * p)
        hessian = (design * (trials * p * (1 - p))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            return float("nan"), float("nan")
        if np.max(np.abs(step)) < 1e-10:
            return float(beta[0]), float(beta[1])
    return float("nan"), float("nan")  # no convergence: separable or degenerate outcomes


def calibration_statistics(hist: ScoreHistogram) -> dict[str, Any]:
    """ECE (equal width and mass), Brier and its decomposition, slope, intercept, curve.

    Keys are those of ``monitor.metrics.CALIBRATION_STATISTICS`` plus
    ``reliability_curve``: ``[[mean score, fraction positive, count], ...]`` over the
    non-empty equal-width bins. Values are NaN when the histogram is empty.
    """
    n = hist.n
    nan = float("nan")
    if n == 0:
        return {
            "ece_equal_width": nan, "ece_equal_mass": nan, "brier_score": nan,
            "brier_reliability": nan, "brier_resolution": nan, "brier_uncertainty": nan,
            "slope": nan, "intercept": nan, "reliability_curve": [],
        }
    fine = np.arange(SCORE_BINS)
    counts, positives, score_sum = _grouped_ece(fine // _PER_COARSE, hist, COARSE_BINS)
    fine_counts = hist.positives + hist.negatives
    before = np.cumsum(fine_counts) - fine_counts
    mass_group = np.minimum((COARSE_BINS * before) // n, COARSE_BINS - 1)
    mass = _grouped_ece(mass_group, hist, COARSE_BINS)

    used = counts > 0
    mean_score = score_sum[used] / counts[used]
    positive_rate = positives[used] / counts[used]
    base_rate = positives.sum() / n
    reliability = float(np.sum(counts[used] * (mean_score - positive_rate) ** 2) / n)
    resolution = float(np.sum(counts[used] * (positive_rate - base_rate) ** 2) / n)

    occupied = fine_counts > 0
    intercept, slope = _logistic_fit(
        hist.logit_sum[occupied] / fine_counts[occupied],
        hist.positives[occupied].astype(np.float64),
        fine_counts[occupied].astype(np.float64),
    )
    curve = [[float(s), float(p), float(c)] for s, p, c in zip(mean_score, positive_rate, counts[used])]
    return {
        "ece_equal_width": _ece(counts, positives, score_sum),
        "ece_equal_mass": _ece(*mass),
        "brier_score": hist.brier_sum / n,
        "brier_reliability": reliability,
        "brier_resolution": resolution,
        "brier_uncertainty": float(base_rate * (1 - base_rate)),
        "slope": slope,
        "intercept": intercept,
        "reliability_curve": curve,
    }


def canonical_labels(values: Any) -> list[str | None]:
    """Labels as the strings events carry: 1, 1.0 and "1" are all ``"1"``; booleans
    are ``"true"``/``"false"`` (like baseline categories); missing is None."""
    out: list[str | None] = []
    for value in list(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
        elif isinstance(value, (bool, np.bool_)):
            out.append("true" if value else "false")
        elif isinstance(value, (int, np.integer)):
            out.append(str(int(value)))
        elif isinstance(value, (float, np.floating)):
            out.append(str(int(value)) if float(value).is_integer() else repr(float(value)))
        else:
            out.append(str(value))
    return out


def reference_calibration(
    y_true: Any,
    y_score: Any,
    task: str,
    *,
    y_pred: Any = None,
    positive_class: str = "1",
) -> dict[str, Any]:
    """Baseline calibration: the live statistics on reference data, plus the CBPE map.

    Binary: ``y_score`` is P(``positive_class``). Multiclass (top-label): ``y_score``
    is the confidence of the predicted class and ``y_pred`` is needed; the outcome
    is "prediction correct". Regression has no calibration (empty dict).
    """
    if task == "regression" or y_score is None:
        return {}
    truth = canonical_labels(y_true)
    scores = np.asarray(y_score, dtype=np.float64)
    if task == "multiclass":
        if y_pred is None:
            return {}
        outcome = np.array([t is not None and t == p for t, p in zip(truth, canonical_labels(y_pred))])
    else:
        outcome = np.array([t == positive_class for t in truth])
    known = np.array([t is not None for t in truth], dtype=bool)
    hist = ScoreHistogram()
    hist.add(scores[known], outcome[known])
    result = calibration_statistics(hist)
    if task == "binary":
        from detectors.cbpe import CalibrationMap

        result["cbpe_map"] = CalibrationMap.fit(hist).to_dict()
    return result
