"""Novelty: the share of a window's values in the "unseen" bin, against what the reference predicts.

Categorical bins end with "unseen": values outside the baseline's stored category
list. Even a window drawn from the reference's own distribution puts some values
there when the category has a long tail: values the reference saw but did not store
(the list is capped), and values the reference never saw at all. The baseline
estimates that share (``expected_unseen``, computed by
:func:`unseen_estimate`) with Good–Turing (Good 1953): the
probability that the next value is one never seen in ``N`` reference values is
``N1 / N`` (``N1``: categories seen exactly once), and the true mass of the
categories seen ``j`` times is ``(j + 1) N_{j+1} / N``; the estimate adds the
never-seen mass to that of the seen-but-unlisted categories.

The score is the **excess** unseen share ``x / n - expected_unseen`` (negative when
fewer new values than expected arrive). The p-value tests the excess one-sided,
treating the unseen counts of window (``x`` of ``n``) and reference (``y =
expected_unseen · N`` of ``N``) as Poisson: given ``x + y``, ``x`` is binomial with
probability ``n / (n + N)`` under no change (the conditional test for two Poisson
rates; Przyborowski & Wilenski 1940). Like chi-square, counts are scaled so that
the effective size ``n N / (n + N)`` is at most ``max_effective_n``.

Without an estimate (baselines built before it existed) the expectation is 0, as
it used to be: every unseen value is then excess.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("categorical", np.array([60, 40, 0]), np.array([45, 40, 15]), unseen_bin=2)
>>> unseen_share(data).score
0.15
>>> trickle = FeatureData("categorical", np.array([6000, 4000, 0]), np.array([499, 498, 3]),
...                       unseen_bin=2, expected_unseen=0.004)
>>> result = unseen_share(trickle)
>>> round(result.score, 4), round(result.p_value, 2)
(-0.001, 0.76)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from detectors.base import FeatureData, MethodSpec, Score

__all__ = ["SPEC", "novelty", "unseen_estimate", "unseen_share"]


def novelty(data: FeatureData) -> tuple[float, float | None]:
    """Excess unseen share of the window and its one-sided p-value (NaN, None: nothing counted)."""
    counts = np.asarray(data.cur_counts, dtype=np.float64)
    n = float(counts.sum())
    if n <= 0 or counts.size == 0:
        return float("nan"), None
    index = data.unseen_bin if data.unseen_bin is not None else counts.size - 1
    x = float(counts[index])
    expected = float(data.expected_unseen or 0.0)
    excess = x / n - expected
    n_ref = float(np.sum(data.ref_counts))
    if n_ref <= 0:
        return excess, None
    y = expected * n_ref
    effective_n = n * n_ref / (n + n_ref)
    if data.max_effective_n is not None and effective_n > data.max_effective_n:
        factor = data.max_effective_n / effective_n
        x, y, n, n_ref = x * factor, y * factor, n * factor, n_ref * factor
    if x <= 0:
        return excess, 1.0
    # P(X >= x) for X ~ Binomial(x + y, n / (n + n_ref)), continuous in x and y.
    p_value = float(special.betainc(x, y + 1.0, n / (n + n_ref)))
    return excess, p_value


def unseen_share(data: FeatureData) -> Score:
    """Excess unseen share (the raw share when the baseline has no estimate) and its p-value."""
    excess, p_value = novelty(data)
    return Score(excess, p_value)


def unseen_estimate(frequencies: np.ndarray, n_listed: int) -> float:
    """Good–Turing estimate of the share of new values outside the first ``n_listed`` categories.

    ``frequencies`` are the reference counts per category, largest first; the first
    ``n_listed`` are stored (:class:`monitor.baseline.FeatureProfile`). Good–Turing (Good 1953) puts the true total mass of the
    categories seen ``j`` times at ``(j + 1) N_{j+1} / N`` and that of never-seen ones
    at ``N_1 / N``. The unseen bin receives the never-seen categories and the unlisted
    share ``u_j`` of those seen ``j`` times, so the estimate is
    ``(N_1 + Σ_j (j + 1) N_{j+1} u_j) / N``. With every category listed it is
    ``N_1 / N``; measured on Zipf(1.1) with 50,000 reference rows it is within 0.004
    of the true mass outside the list (docs/detectors.md).

    >>> unseen_estimate(np.array([5, 3, 2, 1, 1, 1]), 6)  # all listed: N1 / N
    0.2307...
    """
    values = np.asarray(frequencies, dtype=np.int64)
    total = values.sum()
    if total <= 0:
        return 0.0
    unlisted = values[n_listed:]
    top = int(unlisted.max()) if unlisted.size else 0
    per_count = np.bincount(values, minlength=top + 2).astype(np.float64)
    unlisted_per_count = np.bincount(unlisted, minlength=top + 2).astype(np.float64)
    j = np.arange(1, top + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(per_count[j] > 0, unlisted_per_count[j] / per_count[j], 0.0)
    return float((per_count[1] + np.sum((j + 1) * per_count[j + 1] * share)) / total)



SPEC = MethodSpec(
    name="unseen_share",
    kinds=frozenset({"categorical"}),
    needs="counts",
    default_threshold=0.01,
    higher_is_drift=True,
    source="TFDV DistributionConstraints.min_domain_mass (share of values that must lie in the "
    "known domain; its default 1.0 flags any new value); driftd uses 0.99, i.e. >= 1 % unseen "
    "beyond what the baseline's Good-Turing estimate expects, so the tail's trickle does not page",
    description="Share of window values in categories absent from the reference, in excess of the expected share",
    score=unseen_share,
    test="conditional binomial test of window vs reference unseen counts (Poisson rates), one-sided",
    score_range=(-1.0, 1.0),
)
