"""Attribution drift: does the model still lean on the same features?

A window's attribution profile is the mean |SHAP| per feature over the explained
predictions of that window; the reference is the baseline's global importances
(mean |SHAP| over the training sample, same explainer, same output space). Two
views are reported:

* **rank agreement**: NDCG of the features ranked by the window's mean |SHAP|,
  with the baseline importances as gains. 1 means the window orders the features
  exactly as the baseline does; swapping the two most important features of
  importances (3, 1, 0.1) gives 0.80. Ties in the window's values are
  handled by averaging gains over the tie, as ``sklearn.metrics.ndcg_score`` does
  (the reference implementation in the tests).
* **per-feature relative change**: ``(window - baseline) / baseline``, with the
  baseline floored at ``RELATIVE_FLOOR`` times the total importance so that a
  feature with no baseline importance gives a large, finite number.

The decision is ``ndcg < threshold`` (``explain.attribution_threshold``, default
0.9), taken only once a window has at least ``min_explanations`` explanations.
There is no published default for this threshold; 0.9 flags a swap of the two
leading features of a model whose leading feature is at least twice as important
as the next, and keeps same-model windows (NDCG ≈ 0.99 and above on a few hundred
explanations) quiet. Tune it per model when rankings are naturally unstable (many
features of similar importance).

>>> result = attribution_drift({"a": 3.0, "b": 1.0, "c": 0.1}, {"a": 1.0, "b": 3.0, "c": 0.1}, 100)
>>> round(result.ndcg, 4), result.drifted, round(result.relative_change["b"], 2)
(0.7995, True, 2.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "RELATIVE_FLOOR",
    "AttributionDrift",
    "attribution_drift",
    "ndcg",
    "relative_change",
]

DEFAULT_THRESHOLD = 0.9
RELATIVE_FLOOR = 1e-3


@dataclass(frozen=True, slots=True)
class AttributionDrift:
    """Attribution profile of one window against the baseline.

    ``ndcg`` is NaN (and ``drifted`` False) when the baseline has no importances or
    the window has fewer than ``min_explanations`` explanations.
    """

    ndcg: float
    drifted: bool
    threshold: float
    n_explanations: int
    mean_abs_shap: dict[str, float]
    relative_change: dict[str, float]


def ndcg(gains: np.ndarray, scores: np.ndarray, k: int | None = None) -> float:
    """Normalised discounted cumulative gain of ranking items by ``scores``.

    Parameters
    ----------
    gains
        Relevance of each item (here: baseline importance), non-negative.
    scores
        The ranking to judge (here: the window's mean |SHAP|); ties average the
        gains of the tied items.
    k
        Only the top ``k`` positions count (all when None).

    Returns
    -------
    float
        In [0, 1]; NaN when every gain is zero.

    >>> ndcg(np.array([3.0, 2.0, 1.0]), np.array([30.0, 20.0, 10.0]))
    1.0
    >>> round(ndcg(np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])), 6)
    0.789998
    """
    gains = np.asarray(gains, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if gains.shape != scores.shape or gains.ndim != 1:
        raise ValueError(f"gains and scores must be 1-d arrays of one length, got {gains.shape} and {scores.shape}")
    n = len(gains)
    if n == 0:
        return float("nan")
    discount = 1.0 / np.log2(np.arange(n) + 2.0)
    if k is not None:
        discount[k:] = 0.0
    ideal = float(np.sum(np.sort(gains)[::-1] * discount))
    if ideal <= 0:
        return float("nan")
    return _tie_averaged_dcg(gains, scores, discount) / ideal


def _tie_averaged_dcg(gains: np.ndarray, scores: np.ndarray, discount: np.ndarray) -> float:
    # Items with equal scores share their positions: each tie group contributes its
    # mean gain times the sum of the discounts of the positions it occupies.
    _, group, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    mean_gain = np.bincount(group.ravel(), weights=gains, minlength=len(counts)) / counts
    cumulative = np.cumsum(discount)
    last = np.cumsum(counts) - 1
    group_discount = np.diff(np.concatenate(([0.0], cumulative[last])))
    return float(np.sum(mean_gain * group_discount))


def relative_change(reference: np.ndarray, current: np.ndarray, floor: float = RELATIVE_FLOOR) -> np.ndarray:
    """``(current - reference) / max(reference, floor * sum(reference))`` per feature.

    >>> relative_change(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.5, 0.0])).tolist()
    [-0.5, 0.5, 0.0]
    """
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    total = float(reference.sum())
    denominator = np.maximum(reference, floor * total if total > 0 else floor)
    return (current - reference) / denominator


def attribution_drift(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    n_explanations: int,
    threshold: float = DEFAULT_THRESHOLD,
    min_explanations: int = 1,
) -> AttributionDrift:
    """Compare a window's mean |SHAP| per feature with the baseline importances.

    Parameters
    ----------
    reference
        Baseline global importance (mean |SHAP|) per feature.
    current
        The window's mean |SHAP| per feature. Features present on one side only
        count as zero on the other.
    n_explanations
        Explanations the window's means are over.
    threshold
        Drift when NDCG is below it.
    min_explanations
        Fewer explanations than this: no decision (NDCG reported, ``drifted`` False).
    """
    names = list(reference) + [name for name in current if name not in reference]
    ref = np.array([float(reference.get(name, 0.0)) for name in names])
    cur = np.array([float(current.get(name, 0.0)) for name in names])
    score = ndcg(ref, cur) if len(names) else float("nan")
    change = relative_change(ref, cur) if len(names) else np.empty(0)
    decided = n_explanations >= max(1, min_explanations) and np.isfinite(score)
    return AttributionDrift(
        ndcg=float(score),
        drifted=bool(decided and score < threshold),
        threshold=float(threshold),
        n_explanations=int(n_explanations),
        mean_abs_shap={name: float(value) for name, value in zip(names, cur)},
        relative_change={name: float(value) for name, value in zip(names, change)},
    )
