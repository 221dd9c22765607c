"""Chi-square test of homogeneity on category counts, with Cramér's V as the effect size.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("categorical", np.array([500, 500, 0]), np.array([300, 700, 0]))
>>> result = chisquare(data)
>>> round(result.score, 4), result.p_value < 1e-10
(0.2041, True)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from detectors.base import FeatureData, MethodSpec, Score


def chisquare(data: FeatureData) -> Score:
    """Chi-square on the 2 x k contingency table (reference vs window), empty columns dropped."""
    table = np.vstack([data.ref_counts, data.cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    n = table.sum()
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return Score(0.0, 1.0)
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    cramers_v = float(np.sqrt(chi2 / n))  # min(rows, cols) - 1 == 1 for two rows
    return Score(cramers_v, float(p_value))


SPEC = MethodSpec(
    name="chisquare",
    kinds=frozenset({"categorical"}),
    needs="counts",
    default_threshold=0.1,
    higher_is_drift=True,
    source="Cohen (1988): Cramér's V of 0.1 is a small effect; p-value from scipy chi2_contingency",
    description="Chi-square homogeneity test; score is Cramér's V, p-value corrected across features",
    score=chisquare,
)
