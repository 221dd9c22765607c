"""Score bins that adapt to the model, for ROC AUC and other rank metrics.

A rank metric computed from binned scores treats the scores of one bin as ties.
On 1000 equal-width bins that is harmless for scores spread over [0, 1] and ruinous
for the scores boosted trees, saturated neural nets and rule-based scorers give:
most of them lie within 1e-5 of 0 or 1, so most positives and negatives share the
first and last bin and the AUC collapses toward 0.5.

:class:`ScoreBins` places its edges where the model's scores are:

* reference quantiles (``quantiles`` of them, from the baseline's scores): every
  bin holds about the same share of reference events, however saturated;
* logit-spaced edges, ``expit(k * logit_step)`` for ``|k * logit_step| <=
  logit_limit``: a fixed resolution in log-odds from ~2e-9 to 1 - 2e-9, so that
  live scores that moved away from the reference are still told apart (1e-6 and
  0, 1 - 1e-6 and 1 fall in different bins).

Bins are ``(a, b]`` like :func:`detectors.calibration.bin_scores` (the first one
closed), so :meth:`ScoreBins.fixed` (the 0.001 grid) bins exactly as before.
Ties within a bin move the AUC by at most ``0.5 * sum_b pos_b neg_b / (P N)``
(:func:`detectors.performance.auc_binning_error`), which every AUC reports.

:class:`RankCounts` is the mergeable per-window aggregate: positives, negatives,
and the lowest and highest score per bin. A bin whose scores are all equal holds
true ties only (scikit-learn counts them 1/2 as well), so it adds nothing to the
bound: a rule-based scorer with a few distinct outputs gets an exact AUC. It keeps
the bins' digest, not their edges; the edges live once in the baseline and are
passed to :meth:`RankCounts.add`.

>>> import numpy as np
>>> reference = np.random.default_rng(0).beta(0.2, 0.2, 1000)   # saturated scores
>>> bins = ScoreBins.from_reference(reference)
>>> bins.n_bins, bins.assign(np.array([0.0, 1e-6, 2e-6, 1 - 1e-6, 1.0])).tolist()
(673, [0, 42, 46, 626, 672])
>>> ScoreBins.fixed().assign(np.array([0.0, 1e-6, 1 - 1e-6, 1.0])).tolist()   # the old grid
[0, 0, 999, 999]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from detectors.calibration import SCORE_EDGES

__all__ = ["RankCounts", "ScoreBins"]

QUANTILES = 512
LOGIT_STEP = 0.25
LOGIT_LIMIT = 20.0
MAX_BINS = 4096


def _digest(edges: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(edges, dtype="<f8").tobytes()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class ScoreBins:
    """Interior bin edges over [0, 1] (strictly increasing) and their digest."""

    edges: np.ndarray
    digest: str = field(default="")

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.float64)
        if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError("score bin edges must be finite and strictly increasing")
        if len(edges) and (edges[0] < 0 or edges[-1] > 1):
            raise ValueError("score bin edges must lie in [0, 1]")
        if len(edges) + 1 > MAX_BINS:
            raise ValueError(f"at most {MAX_BINS} score bins, got {len(edges) + 1}")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "digest", _digest(edges))

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    @classmethod
    def fixed(cls) -> ScoreBins:
        """The 1000 equal-width bins of :data:`~detectors.calibration.SCORE_EDGES`
        (baselines built before adaptive bins)."""
        return _FIXED

    @classmethod
    def from_reference(
        cls,
        scores: Any,
        *,
        quantiles: int = QUANTILES,
        logit_step: float = LOGIT_STEP,
        logit_limit: float = LOGIT_LIMIT,
    ) -> ScoreBins:
        """Edges from reference scores (quantiles) plus a logit-spaced grid.

        Scores outside [0, 1] and NaN are ignored; without any, only the logit grid.
        """
        if quantiles < 1 or logit_step <= 0 or logit_limit <= 0:
            raise ValueError("quantiles must be >= 1 and logit_step, logit_limit > 0")
        values = np.asarray(scores, dtype=np.float64).ravel()
        values = values[(values >= 0) & (values <= 1)]
        steps = np.arange(-np.floor(logit_limit / logit_step), np.floor(logit_limit / logit_step) + 1)
        parts = [special.expit(steps * logit_step)]
        if len(values):
            parts.append(np.quantile(values, np.linspace(0, 1, quantiles + 1)[1:-1]))
        edges = np.unique(np.concatenate(parts))
        return cls(edges[(edges > 0) & (edges < 1)])

    def assign(self, scores: np.ndarray) -> np.ndarray:
        """Bin index of each score (``(a, b]`` bins, the first one closed)."""
        return np.searchsorted(self.edges, np.asarray(scores, dtype=np.float64), side="left")


_FIXED = ScoreBins(SCORE_EDGES[1:-1])


@dataclass(slots=True)
class RankCounts:
    """Positives, negatives, lowest and highest score per bin of one :class:`ScoreBins`
    (mergeable)."""

    digest: str
    positives: np.ndarray
    negatives: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls, bins: ScoreBins) -> RankCounts:
        return cls._blank(bins.digest, bins.n_bins)

    @classmethod
    def _blank(cls, digest: str, k: int) -> RankCounts:
        return cls(digest, np.zeros(k, np.int64), np.zeros(k, np.int64), np.full(k, np.inf), np.full(k, -np.inf))

    @property
    def mixed(self) -> np.ndarray:
        """Bins holding more than one distinct score (the only ones ties can misorder)."""
        return self.low < self.high

    @property
    def n(self) -> int:
        return int(self.positives.sum() + self.negatives.sum())

    def add(self, bins: ScoreBins, scores: np.ndarray, outcomes: np.ndarray) -> None:
        """Count scores in [0, 1] by outcome (True: positive); others are left out."""
        if bins.digest != self.digest:
            raise ValueError(f"score bins {bins.digest} are not the bins of these counts ({self.digest})")
        scores = np.asarray(scores, dtype=np.float64)
        outcomes = np.asarray(outcomes, dtype=bool)
        valid = (scores >= 0) & (scores <= 1)
        index = bins.assign(scores[valid])
        outcomes = outcomes[valid]
        self.positives += np.bincount(index[outcomes], minlength=bins.n_bins)
        self.negatives += np.bincount(index[~outcomes], minlength=bins.n_bins)
        np.minimum.at(self.low, index, scores[valid])
        np.maximum.at(self.high, index, scores[valid])

    def merge(self, other: RankCounts) -> RankCounts:
        if other.digest != self.digest or len(other.positives) != len(self.positives):
            raise ValueError(f"cannot merge rank counts over different score bins ({self.digest}, {other.digest})")
        return RankCounts(
            self.digest, self.positives + other.positives, self.negatives + other.negatives,
            np.minimum(self.low, other.low), np.maximum(self.high, other.high),
        )

    def to_state(self) -> dict[str, Any]:
        used = np.flatnonzero(self.positives + self.negatives)  # sparse: scores cluster
        return {
            "digest": self.digest, "n_bins": len(self.positives), "bins": used.tolist(),
            "positives": self.positives[used].tolist(), "negatives": self.negatives[used].tolist(),
            "low": self.low[used].tolist(), "high": self.high[used].tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RankCounts:
        counts = cls._blank(str(state["digest"]), int(state["n_bins"]))
        used = np.asarray(state["bins"], dtype=np.int64)
        for name in ("positives", "negatives", "low", "high"):
            getattr(counts, name)[used] = state[name]
        return counts

