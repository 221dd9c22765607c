"""Two-sample Kolmogorov–Smirnov test on bounded samples.

The statistic is exact for the samples given; the p-value uses the sizes of the
samples actually compared (not the window's event count), so a window of a
million events summarised by a 2,000-row sample is not treated as a million
independent points.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> ref = np.arange(100, dtype=float)
>>> data = FeatureData("numeric", np.ones(1), np.ones(1), ref, ref + 50)
>>> ks(data).score
0.5
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from detectors.base import FeatureData, MethodSpec, Score


def ks(data: FeatureData) -> Score:
    """KS statistic D (effect size) and its asymptotic/exact p-value from scipy."""
    ref, cur = data.ref_sample, data.cur_sample
    if ref is None or cur is None or len(ref) == 0 or len(cur) == 0:
        return Score(float("nan"), None)
    result = stats.ks_2samp(ref, cur, method="auto")
    return Score(float(result.statistic), float(result.pvalue))


SPEC = MethodSpec(
    name="ks",
    kinds=frozenset({"numeric"}),
    needs="sample",
    default_threshold=0.1,
    higher_is_drift=True,
    source="KS D >= 0.1 as the minimum relevant effect (NannyML/alibi-detect use p < 0.05 alone; "
    "the effect floor keeps large windows from flagging negligible shifts)",
    description="Kolmogorov–Smirnov D on bounded samples, p-value from the sample sizes",
    score=ks,
)
