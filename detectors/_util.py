"""Small numeric helpers shared by the methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from detectors.base import FeatureData

# Proportions are floored at this value before taking logs (PSI, KL-type terms),
# the convention used by evidently and most PSI write-ups.
EPSILON = 1e-4


def proportions(counts: np.ndarray, floor: float = EPSILON) -> np.ndarray:
    """Counts to proportions, floored at ``floor`` so logarithms stay finite."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return np.full(counts.shape, floor)
    return np.maximum(counts / total, floor)


def shares(counts: np.ndarray) -> np.ndarray | None:
    """Counts to proportions without smoothing; None when there is nothing counted."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else None


def sorted_finite(values: np.ndarray | None) -> np.ndarray:
    """Finite values of a sample, sorted (a no-op copy-free path when already sorted)."""
    if values is None:
        return np.empty(0)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        values = values.ravel()
    if not np.all(np.isfinite(values)):
        values = values[np.isfinite(values)]
    if values.size > 1 and np.any(values[1:] < values[:-1]):
        values = np.sort(values)
    return values


class Pooled(NamedTuple):
    """Two sorted samples merged: distinct values and cumulative counts on them.

    ``a_le[j]`` / ``b_le[j]`` count the values of each sample that are ``<= values[j]``
    (the empirical CDFs times the sample sizes, scipy's ``searchsorted(side="right")``);
    ``ties[j]`` counts pooled values equal to ``values[j]``.
    """

    values: np.ndarray
    a_le: np.ndarray
    b_le: np.ndarray
    ties: np.ndarray
    n: int
    m: int


def pool(a: np.ndarray, b: np.ndarray) -> Pooled:
    """Merge two sorted samples in O(n + m) work (a stable sort of two sorted runs)."""
    n, m = a.size, b.size
    joined = np.concatenate([a, b])
    order = np.argsort(joined, kind="stable")
    ordered = joined[order]
    # int32 cumulative sums are an order of magnitude faster than numpy's default int64 here.
    a_cumulative = np.cumsum(order < n, dtype=np.int32)
    is_last = np.empty(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=is_last[:-1])
    is_last[-1] = True
    last = np.flatnonzero(is_last)
    a_le = a_cumulative[last]
    b_le = last + 1 - a_le
    ties = np.diff(last, prepend=-1)
    return Pooled(ordered[last], a_le, b_le, ties, n, m)


def group_samples(
    data: Sequence[FeatureData],
) -> tuple[dict[tuple[int, int], list[int]], list[np.ndarray], list[np.ndarray]]:
    """Finite samples of many features, grouped by (reference size, window size).

    Returns the groups (indices into ``data``), the sorted reference samples and the
    (unsorted) finite window samples. Features with an empty side are in no group.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    refs, curs = [], []
    for i, item in enumerate(data):
        ref = sorted_finite(item.ref_sample)
        cur = np.asarray(item.cur_sample if item.cur_sample is not None else np.empty(0), dtype=np.float64)
        if not np.all(np.isfinite(cur)):
            cur = cur[np.isfinite(cur)]
        refs.append(ref)
        curs.append(cur)
        if ref.size and cur.size:
            groups.setdefault((ref.size, cur.size), []).append(i)
    return groups, refs, curs


class PooledRows(NamedTuple):
    """:class:`Pooled` for F features at once, without ties (every pooled value distinct)."""

    values: np.ndarray  # (F, N) pooled values, sorted per row
    a_le: np.ndarray  # (F, N) count of reference values <= values
    from_a: np.ndarray  # (F, N) whether each pooled value came from the reference
    tied: np.ndarray  # (F,) rows that have ties (their other fields must not be used)
    n: int
    m: int


def pool_rows(ref_rows: np.ndarray, cur_rows: np.ndarray) -> PooledRows:
    """Merge row-wise sorted (F, n) and (F, m) samples in one vectorised pass."""
    n, m = ref_rows.shape[1], cur_rows.shape[1]
    joined = np.concatenate([ref_rows, cur_rows], axis=1)
    order = np.argsort(joined, axis=1, kind="stable")
    values = np.take_along_axis(joined, order, axis=1)
    from_a = order < n
    tied = np.any(values[:, 1:] == values[:, :-1], axis=1)
    return PooledRows(values, np.cumsum(from_a, axis=1, dtype=np.int32), from_a, tied, n, m)


def standardise(
    reference: np.ndarray, current: np.ndarray, *, indicators: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Both matrices in reference standard units, missing values at the reference mean.

    Columns that are constant or entirely missing in the reference carry no scale
    and are dropped (univariate methods still see them). With ``indicators`` a
    column's missingness becomes an extra feature, centred on the reference
    missing rate, wherever either side has missing values.
    """
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if reference.ndim != 2 or current.ndim != 2 or reference.shape[1] != current.shape[1]:
        raise ValueError(
            f"multivariate data must be two matrices with the same columns; "
            f"got shapes {reference.shape} and {current.shape}"
        )
    ref_missing, cur_missing = ~np.isfinite(reference), ~np.isfinite(current)
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = (~ref_missing).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(np.where(ref_missing, 0, reference), axis=0) / np.maximum(counts, 1), 0)
        centred = np.where(ref_missing, 0.0, reference - mean)
        std = np.sqrt((centred**2).sum(axis=0) / np.maximum(counts - 1, 1))
    keep = (counts > 1) & (std > 0)
    ref_z = np.where(ref_missing, 0.0, (reference - mean) / np.where(keep, std, 1.0))[:, keep]
    cur_z = np.where(cur_missing, 0.0, (current - mean) / np.where(keep, std, 1.0))[:, keep]
    if indicators:
        flagged = ref_missing.any(axis=0) | cur_missing.any(axis=0)
        if flagged.any():
            rate = ref_missing[:, flagged].mean(axis=0)
            ref_z = np.hstack([ref_z, ref_missing[:, flagged] - rate])
            cur_z = np.hstack([cur_z, cur_missing[:, flagged] - rate])
    return ref_z, cur_z
