"""Hellinger distance between binned distributions.

``H(p, q) = sqrt(1 - Σ sqrt(p_i q_i)) = ‖sqrt(p) - sqrt(q)‖₂ / sqrt(2)``, in [0, 1].
NannyML computes the second form, Evidently the first (on its own bins).

Categorical tables are pooled first (:mod:`detectors.pooling`): sparse bins,
"other known" and "unseen" merge, so a bin with reference share 0 cannot dominate.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("categorical", np.array([50, 50, 0]), np.array([25, 75, 0]))
>>> round(hellinger(data).score, 6)
0.184592
"""

from __future__ import annotations

import numpy as np

from detectors._util import shares
from detectors.base import FeatureData, MethodSpec, Score
from detectors.pooling import pooled_counts

__all__ = ["SPEC", "hellinger"]


def hellinger(data: FeatureData) -> Score:
    """Hellinger distance of the reference and window bin shares."""
    p, q = (shares(counts) for counts in pooled_counts(data))
    if p is None or q is None:
        return Score(float("nan"))
    difference = np.sqrt(p) - np.sqrt(q)
    return Score(float(np.sqrt(np.dot(difference, difference) / 2.0)))


SPEC = MethodSpec(
    name="hellinger",
    kinds=frozenset({"numeric", "categorical"}),
    needs="counts",
    default_threshold=0.1,
    higher_is_drift=True,
    source="Evidently 0.7 'hellinger' stattest default (distance >= 0.1)",
    description="Hellinger distance over reference bins, range [0, 1]",
    score=hellinger,
    score_range=(0.0, 1.0),
)
