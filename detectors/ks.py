"""Two-sample Kolmogorov–Smirnov test on bounded samples.

The statistic is exact for the samples given (it equals scipy's ``ks_2samp``); the
p-value uses the sizes of the samples actually compared, not the window's event
count, so a window of a million events summarised by a 2,000-row sample is not
treated as a million independent points. On streaming windows the p-value is
Smirnov's asymptotic form (scipy's ``method="asymp"``, about 0.1 ms instead of
0.5 ms) when both samples hold at least 100 values, scipy's exact distribution
below that; offline comparisons (``FeatureData.exact``) use scipy's default.
Fewer than ``MIN_SAMPLE_SIZE`` (10) values on a side score NaN: not enough data.

Approximation error of bounded samples (DKW inequality with Massart's constant):
with samples of sizes n and m, ``|D_sample - D_true| <= eps_n + eps_m`` with
probability at least ``1 - 2 exp(-2 n eps_n^2) - 2 exp(-2 m eps_m^2)``; see
:func:`dkw_bound` and docs/detectors.md.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> ref = np.arange(100, dtype=float)
>>> data = FeatureData("numeric", np.ones(1), np.ones(1), ref, ref + 50)
>>> result = ks(data)
>>> result.score, f"{result.p_value:.4g}"
(0.5, '4.393e-12')
>>> round(dkw_bound(2000, 2000, confidence=0.95), 4)
0.0662
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from detectors._util import Pooled, group_samples, pool, pool_rows, sorted_finite
from detectors.base import MIN_SAMPLE_SIZE, FeatureData, MethodSpec, Score

__all__ = ["SPEC", "dkw_bound", "ks", "ks_many", "ks_statistic"]

# Below this many values on the smaller side, Smirnov's asymptotic form is poor and
# scipy's exact distribution is cheap: use it.
EXACT_BELOW = 100


def ks_statistic(pooled: Pooled) -> float:
    """Largest distance between the two empirical CDFs of a :func:`~detectors._util.pool`."""
    return float(np.max(np.abs(pooled.a_le / pooled.n - pooled.b_le / pooled.m)))


def ks(data: FeatureData) -> Score:
    """KS statistic D (effect size) and its p-value from the sizes of the samples compared."""
    ref, cur = sorted_finite(data.ref_sample), sorted_finite(data.cur_sample)
    smaller = min(ref.size, cur.size)
    # An explicit offline comparison of small files is still answered (as scipy would).
    if smaller == 0 or (smaller < MIN_SAMPLE_SIZE and not data.exact):
        return Score(float("nan"), None)
    if data.exact or smaller < EXACT_BELOW:
        result = stats.ks_2samp(ref, cur, method="auto")
        return Score(float(result.statistic), float(result.pvalue))
    d = ks_statistic(pool(ref, cur))
    larger, smaller = max(ref.size, cur.size), min(ref.size, cur.size)
    effective_n = round(larger * smaller / (larger + smaller))
    # Exactly scipy's asymptotic branch: the one-sample two-sided distribution at n*m/(n+m).
    p_value = float(np.clip(stats.kstwo.sf(d, effective_n), 0.0, 1.0))
    return Score(d, p_value)


def ks_many(data: Sequence[FeatureData]) -> list[Score]:
    """:func:`ks` for many features in one vectorised pass (identical results on windows)."""
    results: list[Score | None] = [None] * len(data)
    groups, refs, curs = group_samples(data)
    for (n, m), members in groups.items():
        if len(members) < 2 or min(n, m) < EXACT_BELOW or any(data[i].exact for i in members):
            continue
        pooled = pool_rows(np.stack([refs[i] for i in members]), np.sort(np.stack([curs[i] for i in members]), axis=1))
        d = np.max(np.abs(pooled.a_le / n - (np.arange(1, n + m + 1) - pooled.a_le) / m), axis=1)
        effective_n = round(max(n, m) * min(n, m) / (n + m))
        p_values = np.clip(stats.kstwo.sf(d, effective_n), 0.0, 1.0)
        for row, i in enumerate(members):
            if not pooled.tied[row]:
                results[i] = Score(float(d[row]), float(p_values[row]))
    return [result if result is not None else ks(item) for result, item in zip(results, data)]


def dkw_bound(n: int, m: int, confidence: float = 0.95) -> float:
    """Bound on ``|D_sample - D_true|`` holding with probability ``confidence``.

    The failure probability ``1 - confidence`` is split equally between the two
    samples; each side's empirical CDF is within ``sqrt(ln(4 / (1 - confidence)) / (2 k))``
    of its true CDF (Dvoretzky–Kiefer–Wolfowitz, Massart 1990), and D moves by at most
    the sum of the two deviations (triangle inequality).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    tail = math.log(4.0 / (1.0 - confidence)) / 2.0
    return math.sqrt(tail / n) + math.sqrt(tail / m)


SPEC = MethodSpec(
    name="ks",
    kinds=frozenset({"numeric"}),
    needs="sample",
    default_threshold=0.1,
    higher_is_drift=True,
    source="driftd: KS D >= 0.1 as the minimum relevant effect (the 'small' band of "
    "Kolmogorov distances in Evidently's docs; NannyML and alibi-detect use p < 0.05 alone, "
    "the effect floor keeps large windows from flagging negligible shifts)",
    description="Kolmogorov–Smirnov D on bounded samples, p-value from the sample sizes",
    score=ks,
    test="two-sample Kolmogorov–Smirnov (Smirnov asymptotic on windows, scipy auto offline)",
    score_range=(0.0, 1.0),
    score_many=ks_many,
)
