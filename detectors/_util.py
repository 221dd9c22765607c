"""Small numeric helpers shared by the methods."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
    a_cumulative = np.cumsum(order < n)
    is_last = np.empty(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=is_last[:-1])
    is_last[-1] = True
    last = np.flatnonzero(is_last)
    a_le = a_cumulative[last]
    b_le = last + 1 - a_le
    ties = np.diff(last, prepend=-1)
    return Pooled(ordered[last], a_le, b_le, ties, n, m)


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
