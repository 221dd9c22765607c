"""Decisions across a model's features: effect-size thresholds plus corrected p-values.

A feature is flagged only when its effect size passes the method's threshold and,
for methods with a p-value, the p-value survives the correction for testing all of
the model's features at once.

>>> from detectors.base import DriftResult
>>> raw = [DriftResult("ks", "a", 0.3, 0.001, 0.1, False), DriftResult("ks", "b", 0.05, 0.04, 0.1, False)]
>>> [r.drifted for r in decide(raw, correction="bh", alpha=0.05)]
[True, False]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from detectors.base import DriftResult
from detectors.registry import REGISTRY

__all__ = ["adjust_p_values", "decide", "drift_share", "weighted_drift_score"]


def adjust_p_values(p_values: Sequence[float], correction: str) -> np.ndarray:
    """Adjusted p-values: ``bonferroni``, ``bh`` (Benjamini–Hochberg) or ``none``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0 or correction == "none":
        return p
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0)
    if correction == "bh":
        order = np.argsort(p)
        ranked = p[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(ranked, 1.0)
        return adjusted
    raise ValueError(f"correction must be one of bonferroni, bh, none; got {correction!r}")


def decide(
    results: Sequence[DriftResult], correction: str = "bh", alpha: float = 0.05, novelty_threshold: float | None = None
) -> list[DriftResult]:
    """Flag each result: effect size past its threshold and corrected p-value below ``alpha``.

    Results that carry a novelty signal (categorical homogeneity tests) are also
    flagged when the excess unseen share reaches ``novelty_threshold`` (default: the
    ``unseen_share`` method's threshold) and its p-value, corrected in the same family
    as every other p-value, is below ``alpha``.
    """
    if novelty_threshold is None:
        novelty_threshold = REGISTRY["unseen_share"].default_threshold
    family = [(i, False) for i, r in enumerate(results) if r.p_value is not None and np.isfinite(r.p_value)]
    family += [
        (i, True) for i, r in enumerate(results)
        if r.novelty is not None and r.novelty_p_value is not None and np.isfinite(r.novelty_p_value)
    ]
    raw = [results[i].novelty_p_value if novel else results[i].p_value for i, novel in family]
    adjusted = dict(zip(family, adjust_p_values(raw, correction)))
    decided = []
    for i, result in enumerate(results):
        spec = REGISTRY[result.method]
        drifted = spec.passes(result.score, result.threshold)
        if (i, False) in adjusted:
            drifted = drifted and adjusted[(i, False)] < alpha
        update: dict = {}
        if result.novelty is not None:
            novel = bool(np.isfinite(result.novelty) and result.novelty >= novelty_threshold)
            if (i, True) in adjusted:
                novel = novel and adjusted[(i, True)] < alpha
            drifted = drifted or novel
            update["novelty_threshold"] = float(novelty_threshold)
        decided.append(replace(result, drifted=bool(drifted), **update))
    return decided


def drift_share(results: Sequence[DriftResult]) -> float:
    """Share of features flagged as drifted (0 when there are none)."""
    return float(np.mean([r.drifted for r in results])) if results else 0.0


def weighted_drift_score(results: Sequence[DriftResult], importances: Mapping[str, float] | None = None) -> float:
    """Importance-weighted share of drifted features; uniform weights when none are known."""
    if not results:
        return 0.0
    weights = np.array([max((importances or {}).get(r.feature, 0.0), 0.0) for r in results])
    if weights.sum() <= 0:
        weights = np.ones(len(results))
    flags = np.array([r.drifted for r in results], dtype=np.float64)
    return float(np.dot(weights, flags) / weights.sum())
