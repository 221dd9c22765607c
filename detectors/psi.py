"""Population Stability Index on binned counts.

``PSI = Σ (q_i - p_i) ln(q_i / p_i)`` over bin shares ``p`` (reference) and ``q``
(window), natural log, each share floored at 1e-4 so that an empty bin stays
finite. Evidently replaces only exact zeros (by 1e-4, or by a millionth of the
smallest share when that is below 1e-4); without empty or tiny bins the two agree.
Numeric features use the baseline's quantile bins (10 by default), not
Evidently's Sturges bins on the pooled data, so values differ from Evidently's on
raw numbers while the formula is the same.

Categorical tables are pooled first (:mod:`detectors.pooling`): sparse bins,
"other known" and "unseen" merge, so a bin with reference share 0 cannot dominate.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("numeric", np.array([50, 50]), np.array([40, 60]))
>>> round(psi(data).score, 6)
0.040547
"""

from __future__ import annotations

import numpy as np

from detectors._util import proportions
from detectors.base import FeatureData, MethodSpec, Score
from detectors.pooling import pooled_counts

__all__ = ["SPEC", "psi"]


def psi(data: FeatureData) -> Score:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bins, proportions floored at 1e-4."""
    ref_counts, cur_counts = pooled_counts(data)
    if np.sum(ref_counts) <= 0 or np.sum(cur_counts) <= 0:
        return Score(float("nan"))
    ref = proportions(ref_counts)
    cur = proportions(cur_counts)
    return Score(float(np.sum((cur - ref) * np.log(cur / ref))))


SPEC = MethodSpec(
    name="psi",
    kinds=frozenset({"numeric", "categorical"}),
    needs="counts",
    default_threshold=0.2,
    higher_is_drift=True,
    source="Siddiqi (2006), Credit Risk Scorecards: PSI < 0.1 no change, 0.1-0.2 moderate, "
    "> 0.2 significant shift (Evidently's default is the stricter 0.1)",
    description="Population Stability Index over reference bins (natural log, shares floored at 1e-4)",
    score=psi,
)
