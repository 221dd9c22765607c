"""Share of a window's values that fall in categories never seen in the reference.

Categorical bins end with "unseen", whose reference count is zero, so no
distance between distributions can weigh it sensibly; this method reports it
directly. There is no p-value: against a reference count of zero any unseen
value is certain evidence of something new, and the threshold says how much of
it is worth an alert.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("categorical", np.array([60, 40, 0]), np.array([45, 40, 15]), unseen_bin=2)
>>> unseen_share(data).score
0.15
"""

from __future__ import annotations

import numpy as np

from detectors.base import FeatureData, MethodSpec, Score

__all__ = ["SPEC", "unseen_share"]


def unseen_share(data: FeatureData) -> Score:
    """Window share of the unseen bin (the last bin when ``unseen_bin`` is not given)."""
    counts = np.asarray(data.cur_counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0 or counts.size == 0:
        return Score(float("nan"))
    index = data.unseen_bin if data.unseen_bin is not None else counts.size - 1
    return Score(float(counts[index] / total))


SPEC = MethodSpec(
    name="unseen_share",
    kinds=frozenset({"categorical"}),
    needs="counts",
    default_threshold=0.01,
    higher_is_drift=True,
    source="TFDV DistributionConstraints.min_domain_mass (share of values that must lie in the "
    "known domain; its default 1.0 flags any new value); driftd uses 0.99, i.e. >= 1 % unseen, "
    "so one stray value in a large window does not page",
    description="Share of window values in categories absent from the reference",
    score=unseen_share,
    score_range=(0.0, 1.0),
)
