"""Chi-square test of homogeneity on bin counts, with a sample-size-free Cramér's V as the effect size.

Two choices keep a large window from flagging a negligible change:

* The effect size is Cramér's V of the *balanced* table (both rows rescaled to
  equal totals): ``V² = ½ Σ (p_i - q_i)² / (p_i + q_i)`` over bin shares ``p``
  (reference) and ``q`` (window). It depends on the two distributions only, not
  on how many events each side holds; Cramér's V of the raw table shrinks as
  ``sqrt(n_window / n_reference)`` when the reference is much larger than the
  window. With equal totals both forms agree.
* The p-value treats the comparison as worth at most
  ``FeatureData.max_effective_n`` observations (10,000 by default). Events in a
  production window are not independent draws (sessions, retries, bursts from one
  client), so a million events carry far less than a million observations' worth
  of evidence. The information in a two-sample comparison is its effective size
  ``n_eff = n_ref n_cur / (n_ref + n_cur)``; when that exceeds the cap, both rows
  are scaled by the same factor so that ``n_eff`` equals the cap (chi² scales by
  ``cap / n_eff``). A 5,000-event window against a 100,000-row reference
  (``n_eff`` ≈ 4,760) is tested as it is; a million-event window is not tested as
  a million. An effect at the threshold (V = 0.1) still gives chi² ≈ 400 at the
  cap, so the cap never hides a relevant shift; it stops p-values from sinking
  towards zero with traffic alone. Scaling only the larger side instead would
  make the test conservative (it would under-count the reference's precision).
  Below the cap the test is exactly ``scipy.stats.chi2_contingency(correction=False)``.

Empty bins (zero on both sides) are dropped; with fewer than two non-empty bins
there is nothing to test.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> data = FeatureData("categorical", np.array([500, 500, 0]), np.array([300, 700, 0]))
>>> result = chisquare(data)
>>> round(result.score, 4), f"{result.p_value:.3g}"
(0.2041, '6.93e-20')
"""

from __future__ import annotations

import numpy as np
from scipy import special

from detectors.base import FeatureData, MethodSpec, Score

__all__ = ["SPEC", "chi2_statistic", "chisquare"]


def chi2_statistic(table: np.ndarray) -> tuple[float, int]:
    """Pearson chi² and degrees of freedom of a 2 x k table without empty columns."""
    row_totals = table.sum(axis=1, keepdims=True)
    column_totals = table.sum(axis=0, keepdims=True)
    expected = row_totals * column_totals / table.sum()
    return float(np.sum((table - expected) ** 2 / expected)), table.shape[1] - 1


def chisquare(data: FeatureData) -> Score:
    """Balanced Cramér's V (effect size) and the chi-square p-value on capped counts."""
    table = np.vstack([data.ref_counts, data.cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    totals = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(totals <= 0):
        return Score(0.0 if table.shape[1] == 1 else float("nan"), None)
    p, q = table[0] / totals[0], table[1] / totals[1]
    cramers_v = float(np.sqrt(0.5 * np.sum((p - q) ** 2 / (p + q))))
    chi2, dof = chi2_statistic(table)
    effective_n = totals[0] * totals[1] / (totals[0] + totals[1])
    if data.max_effective_n is not None and effective_n > data.max_effective_n:
        chi2 *= data.max_effective_n / effective_n
    return Score(cramers_v, float(special.chdtrc(dof, chi2)))


SPEC = MethodSpec(
    name="chisquare",
    kinds=frozenset({"numeric", "categorical"}),
    needs="counts",
    default_threshold=0.1,
    higher_is_drift=True,
    source="Cohen (1988), Statistical Power Analysis: Cramér's V (w) of 0.1 is a small effect",
    description="Chi-square homogeneity test over bins; score is Cramér's V of the balanced table",
    score=chisquare,
    test="Pearson chi-square on the 2 x k table, effective size n_ref n_cur / (n_ref + n_cur) capped at max_effective_n",
    score_range=(0.0, 1.0),
)
