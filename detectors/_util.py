"""Small numeric helpers shared by the methods."""

from __future__ import annotations

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
