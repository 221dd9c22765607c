"""Population Stability Index on binned counts.

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


def psi(data: FeatureData) -> Score:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bins, proportions floored at 1e-4."""
    ref = proportions(data.ref_counts)
    cur = proportions(data.cur_counts)
    return Score(float(np.sum((cur - ref) * np.log(cur / ref))))


SPEC = MethodSpec(
    name="psi",
    kinds=frozenset({"numeric", "categorical"}),
    needs="counts",
    default_threshold=0.2,
    higher_is_drift=True,
    source="Siddiqi (2006), Credit Risk Scorecards: PSI > 0.2 is a significant shift",
    description="Population Stability Index over reference-quantile bins (natural log)",
    score=psi,
)
