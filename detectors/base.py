"""Records shared by every detector: what a method sees, what it returns, how it is described.

Detectors are pure: arrays and counts in, frozen results out. No I/O, no logging
handlers; this package imports only numpy and scipy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["DetectorError", "DriftResult", "FeatureData", "FeatureKind", "MethodSpec", "Score"]

FeatureKind = Literal["numeric", "categorical", "multivariate"]

# Count-based p-values treat a comparison as worth at most this many independent
# observations (effective two-sample size; see detectors/chisquare.py, docs/detectors.md).
DEFAULT_MAX_EFFECTIVE_N = 10_000
# Sample-based methods score NaN ("not enough data") with fewer finite values than this
# on either side: a handful of stray events must not decide a feature's drift.
MIN_SAMPLE_SIZE = 10
# Cochran (1954): expected counts of at least 5 per cell for a chi-square p-value;
# sparser bins are pooled (detectors/pooling.py).
MIN_EXPECTED = 5.0


class DetectorError(ValueError):
    """Root exception of ``detectors``: the input cannot be scored; the message says why."""


@dataclass(frozen=True, slots=True)
class FeatureData:
    """One feature of one window, next to the same feature in the baseline.

    Parameters
    ----------
    kind
        ``"numeric"``, ``"categorical"`` or ``"multivariate"``.
    ref_counts, cur_counts
        Counts per bin. Numeric features use the baseline's quantile bins (open at
        both ends); categorical features use the baseline's top-k categories, then
        "other known", then "unseen" (outside the baseline's stored category list;
        zero in the reference unless that list was capped). Missing values
        are not counted here. Multivariate data passes empty arrays.
    ref_sample, cur_sample
        Bounded samples of raw values (numeric only), missing values removed. For
        ``kind="multivariate"`` these are 2-D matrices (rows = sampled events,
        columns = numeric features, NaN where missing).
    ref_std
        Reference standard deviation (numeric), for normalised distances.
    unseen_bin
        Index of the "unseen" bin for categorical features.
    exact
        Offline comparison of full data: compute p-values the way scipy does by
        default (exact small-sample distributions) instead of the fast asymptotic
        forms used on streaming windows.
    max_effective_n
        Count-based p-values treat the comparison as worth at most this many
        independent observations (effective size ``n_ref n_cur / (n_ref + n_cur)``);
        ``None`` uses the counts as they are.
    expected_unseen
        Categorical only: the share of values a window from the reference's own
        distribution is expected to put in the "unseen" bin (reference mass outside
        the stored category list plus the Good–Turing estimate of never-seen mass;
        :attr:`monitor.baseline.FeatureProfile.unseen_estimate`). ``None`` (baselines
        built before the estimate existed) counts as 0.
    min_expected
        Cochran's rule for count-based statistics (:mod:`detectors.pooling`): bins
        whose expected window count ``n_window * p_ref`` is below this are pooled,
        and on categorical tables "other known" joins "unseen". ``None`` scores the
        raw table, as scipy, Evidently and NannyML do (kept for comparisons with them).
    """

    kind: FeatureKind
    ref_counts: np.ndarray
    cur_counts: np.ndarray
    ref_sample: np.ndarray | None = None
    cur_sample: np.ndarray | None = None
    ref_std: float | None = None
    unseen_bin: int | None = None
    exact: bool = False
    max_effective_n: int | None = DEFAULT_MAX_EFFECTIVE_N
    expected_unseen: float | None = None
    min_expected: float | None = MIN_EXPECTED


@dataclass(frozen=True, slots=True)
class Score:
    """What a method's scoring hook returns: an effect size and, for tests, a p-value.

    Homogeneity tests on categorical tables also report the novelty signal
    (:func:`detectors.unseen.novelty`): the window's unseen share in excess of the
    expected share, and the one-sided p-value of that excess.
    """

    score: float
    p_value: float | None = None
    novelty: float | None = None
    novelty_p_value: float | None = None

    def result(self, method: str, feature: str, threshold: float) -> DriftResult:
        """The undecided :class:`DriftResult` of this score (``decide`` sets ``drifted``)."""
        return DriftResult(
            method, feature, self.score, self.p_value, threshold, False,
            novelty=self.novelty, novelty_p_value=self.novelty_p_value,
        )


@dataclass(frozen=True, slots=True)
class DriftResult:
    """The verdict on one feature (or the prediction, or the label) in one window."""

    method: str
    feature: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    # Categorical homogeneity tests: the novelty signal beside the main score
    # (excess unseen share and its p-value; see detectors/unseen.py). A feature is
    # flagged when either the main test or the novelty test passes.
    novelty: float | None = None
    novelty_p_value: float | None = None
    novelty_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A registered method: its scoring hook and how to decide with its score.

    ``threshold`` applies to ``score`` (an effect size); methods with a p-value
    (``test`` names the test) must also pass the corrected significance level to be
    flagged.
    """

    name: str
    kinds: frozenset[str]
    needs: Literal["counts", "sample"]
    default_threshold: float
    higher_is_drift: bool
    source: str
    description: str
    score: Callable[[FeatureData], Score] = field(repr=False)
    test: str = ""
    score_range: tuple[float, float] = (0.0, float("inf"))
    # Optional vectorised hook scoring many features at once (same results as ``score``).
    score_many: Callable[[Sequence[FeatureData]], list[Score]] | None = field(default=None, repr=False)

    def score_all(self, data: Sequence[FeatureData]) -> list[Score]:
        """Scores of many features, through the vectorised hook when the method has one.

        Equal to ``[self.score(d) for d in data]``; the daemon calls this once per
        method per window so that numpy works on all features in one pass.
        """
        if self.score_many is not None and len(data) > 1:
            return self.score_many(data)
        return [self.score(d) for d in data]

    def passes(self, value: float, threshold: float) -> bool:
        """Whether an effect size ``value`` is beyond ``threshold`` in this method's direction.

        NaN never passes; an infinite effect (a constant reference that moved) does.
        """
        if value is None or np.isnan(value):
            return False
        return value >= threshold if self.higher_is_drift else value <= threshold
