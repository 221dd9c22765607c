"""Jensen–Shannon distance between binned distributions, in base 2 so that it lies in [0, 1].

``JS(p, q) = sqrt(½ KL(p ‖ m) + ½ KL(q ‖ m))`` with ``m = (p + q) / 2`` and
logarithms in base 2; empty bins contribute nothing (``0 log 0 = 0``), so no
smoothing is needed. This is scipy's ``jensenshannon(p, q, base=2)`` and NannyML's
definition. Evidently uses the natural log: its value is this one times
``sqrt(ln 2) ≈ 0.8326``.

Categorical tables are pooled first (:mod:`detectors.pooling`): sparse bins,
"other known" and "unseen" merge, so a bin with reference share 0 cannot dominate.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("categorical", np.array([50, 50, 0]), np.array([0, 50, 50]))
>>> round(jensenshannon(data).score, 6)
0.707107
"""

from __future__ import annotations

import numpy as np

from detectors._util import shares
from detectors.base import FeatureData, MethodSpec, Score
from detectors.pooling import pooled_counts

__all__ = ["SPEC", "jensenshannon"]


def _kl_to_mixture(p: np.ndarray, mixture: np.ndarray) -> float:
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log2(p[nonzero] / mixture[nonzero])))


def jensenshannon(data: FeatureData) -> Score:
    """Base-2 Jensen–Shannon distance of the reference and window bin shares."""
    p, q = (shares(counts) for counts in pooled_counts(data))
    if p is None or q is None:
        return Score(float("nan"))
    mixture = (p + q) / 2.0
    divergence = (_kl_to_mixture(p, mixture) + _kl_to_mixture(q, mixture)) / 2.0
    return Score(float(np.sqrt(max(divergence, 0.0))))


SPEC = MethodSpec(
    name="jensenshannon",
    kinds=frozenset({"numeric", "categorical"}),
    needs="counts",
    default_threshold=0.1,
    higher_is_drift=True,
    source="Evidently 0.7 'jensenshannon' stattest default 0.1 (natural log there: 0.1 in base e "
    "is 0.120 in base 2, so driftd's 0.1 in base 2 is slightly stricter)",
    description="Jensen–Shannon distance (log base 2, range [0, 1]) over reference bins",
    score=jensenshannon,
    score_range=(0.0, 1.0),
)
