"""Pooling of sparse bins so that count-based statistics stay valid on long-tailed tables.

A Pearson chi-square p-value is only trustworthy when every cell's expected count
is not too small. Cochran's rule (Cochran 1954, "Some methods for strengthening
the common χ² tests", Biometrics 10:417-451) asks for expected counts of at least
5; driftd applies it to the window row, where the expectation is smallest:
``expected_i = n_window * p_i`` with ``p_i`` the bin's *reference* share. Bins
below :data:`MIN_EXPECTED` are merged into one "pooled" bin.

Categorical tables (those with an ``unseen_bin``) are always pooled further: the
"other known" bin and the "unseen" bin form the pooled bin together with every
sparse top-k category. The reason is that the two are not separable from the
window's side: the baseline stores at most ``max_known`` category names, so a value
the reference saw only rarely (its mass is in "other known") arrives in a window as
"unseen", and a value never seen in the reference has reference share 0, where a
single event would contribute ``≈ n_ref / n_window`` to chi². How much of the window
lands in "unseen" is judged by the novelty signal (:mod:`detectors.unseen`), whose
expectation comes from the baseline, not by the homogeneity test.

If the pooled bin is itself below the rule, it absorbs the remaining bin with the
smallest expectation, repeatedly, until it passes or one bin is left (nothing to
test). Empty bins (zero on both sides) are dropped. Effect sizes (Cramér's V, PSI,
Jensen–Shannon, Hellinger) on categorical tables use the same pooled table, so a
bin with reference share 0 cannot dominate them either. Numeric tables (quantile
bins, about 10 % of the reference each) pool nothing once a window holds 50
values, and their effect sizes use the raw bins.

>>> import numpy as np
>>> ref = np.array([600, 300, 90, 10, 0])      # top-3, "other known", "unseen"
>>> cur = np.array([55, 30, 8, 2, 5])
>>> pooled = pool_table(ref, cur, unseen_bin=4)
>>> pooled.ref.tolist(), pooled.cur.tolist(), pooled.pooled_bins
([600.0, 300.0, 100.0], [55.0, 30.0, 15.0], 3)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from detectors.base import MIN_EXPECTED, FeatureData

__all__ = ["MIN_EXPECTED", "PooledTable", "pool_table", "pooled_counts"]


class PooledTable(NamedTuple):
    """Reference and window counts after pooling; the pooled bin (if any) is last."""

    ref: np.ndarray
    cur: np.ndarray
    pooled_bins: int  # how many original non-empty bins went into the pooled bin (0: none)


def pool_table(
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    unseen_bin: int | None = None,
    min_expected: float = MIN_EXPECTED,
) -> PooledTable:
    """Merge sparse bins (and, for categories, "other known" with "unseen"); see the module docstring."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    ref_total, cur_total = ref.sum(), cur.sum()
    if ref_total <= 0 or cur_total <= 0:
        return PooledTable(ref, cur, 0)
    expected = cur_total * ref / ref_total
    pooled = expected < min_expected
    if unseen_bin is not None and 0 <= unseen_bin < ref.size:
        pooled[unseen_bin] = True
        if unseen_bin >= 1:
            pooled[unseen_bin - 1] = True
    nonempty = (ref + cur) > 0
    pooled &= nonempty
    if not pooled.any():
        keep = nonempty
        return PooledTable(ref[keep], cur[keep], 0)
    kept = np.flatnonzero(nonempty & ~pooled)
    kept = kept[np.argsort(expected[kept], kind="stable")]
    pool_ref, pool_cur = float(ref[pooled].sum()), float(cur[pooled].sum())
    n_pooled = int(pooled.sum())
    start = 0
    # The pooled bin must pass the rule too: absorb the smallest remaining bins.
    while cur_total * pool_ref / ref_total < min_expected and start < kept.size:
        pool_ref += ref[kept[start]]
        pool_cur += cur[kept[start]]
        n_pooled += 1
        start += 1
    rest = np.sort(kept[start:])
    return PooledTable(np.append(ref[rest], pool_ref), np.append(cur[rest], pool_cur), n_pooled)


def pooled_counts(data: FeatureData) -> tuple[np.ndarray, np.ndarray]:
    """The counts an effect size uses: pooled for categorical tables, raw otherwise.

    Raw too when ``data.min_expected`` is None (the peers' definitions).
    """
    if data.unseen_bin is None or data.min_expected is None:
        return np.asarray(data.ref_counts, dtype=np.float64), np.asarray(
            data.cur_counts, dtype=np.float64
        )
    table = pool_table(data.ref_counts, data.cur_counts, data.unseen_bin, data.min_expected)
    return table.ref, table.cur
