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
  a million. An effect at the threshold (V = 0.05) still gives chi² ≈ 100 at the
  cap, so the cap never hides a relevant shift; it stops p-values from sinking
  towards zero with traffic alone. Scaling only the larger side instead would
  make the test conservative (it would under-count the reference's precision).
  Below the cap the test is exactly ``scipy.stats.chi2_contingency(correction=False)``
  on the pooled table (on the raw table with ``min_expected=None``).

Sparse tables are pooled first (:mod:`detectors.pooling`): bins whose expected
window count ``n_window * p_ref`` is below 5 (Cochran's rule) are merged, and on
categorical tables "other known" and "unseen" always join that pooled bin, so a
never-seen value cannot contribute ``n_ref / n_window`` to chi². The p-value is
computed on the pooled table; Cramér's V too for categorical tables (numeric tables
keep their quantile bins for V). Empty bins (zero on both sides) are dropped; with
fewer than two bins left there is nothing to test.

On categorical tables the result also carries the novelty signal
(:func:`detectors.unseen.novelty`): the unseen share beyond what the baseline
expects, with its own p-value and threshold, decided beside V in
:func:`detectors.decision.decide`.

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
from detectors.pooling import pool_table, pooled_counts
from detectors.unseen import novelty

__all__ = ["SPEC", "chi2_statistic", "chisquare"]


def chi2_statistic(table: np.ndarray) -> tuple[float, int]:
    """Pearson chi² and degrees of freedom of a 2 x k table without empty columns."""
    row_totals = table.sum(axis=1, keepdims=True)
    column_totals = table.sum(axis=0, keepdims=True)
    expected = row_totals * column_totals / table.sum()
    return float(np.sum((table - expected) ** 2 / expected)), table.shape[1] - 1


def _cramers_v(ref: np.ndarray, cur: np.ndarray) -> float:
    keep = (ref + cur) > 0
    p, q = ref[keep] / ref.sum(), cur[keep] / cur.sum()
    return float(np.sqrt(0.5 * np.sum((p - q) ** 2 / (p + q))))


def chisquare(data: FeatureData) -> Score:
    """Balanced Cramér's V (effect size) and the chi-square p-value on pooled, capped counts."""
    ref = np.asarray(data.ref_counts, dtype=np.float64)
    cur = np.asarray(data.cur_counts, dtype=np.float64)
    extra = {}
    if data.unseen_bin is not None:
        excess, p_novel = novelty(data)
        extra = {"novelty": excess, "novelty_p_value": p_novel}
    if ref.sum() <= 0 or cur.sum() <= 0:
        return Score(float("nan"), None, **extra)
    cramers_v = _cramers_v(*pooled_counts(data))
    if data.min_expected is None:
        table = np.vstack([ref, cur])
    else:
        pooled = pool_table(ref, cur, data.unseen_bin, data.min_expected)
        table = np.vstack([pooled.ref, pooled.cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return Score(cramers_v, None, **extra)
    chi2, dof = chi2_statistic(table)
    totals = table.sum(axis=1)
    effective_n = totals[0] * totals[1] / (totals[0] + totals[1])
    if data.max_effective_n is not None and effective_n > data.max_effective_n:
        chi2 *= data.max_effective_n / effective_n
    return Score(cramers_v, float(special.chdtrc(dof, chi2)), **extra)


SPEC = MethodSpec(
    name="chisquare",
    kinds=frozenset({"numeric", "categorical"}),
    needs="counts",
    default_threshold=0.05,
    higher_is_drift=True,
    source="Cohen (1988), Statistical Power Analysis: w = 0.1 is a small effect, w of the window's "
    "goodness of fit to the reference shares, sqrt(sum (q-p)^2 / p), which is about 2 V; "
    "noise floors (detectors/noise.py) keep small windows from passing it by chance",
    description="Chi-square homogeneity test over bins; score is Cramér's V of the balanced table",
    score=chisquare,
    test="Pearson chi-square on the 2 x k table pooled to expected counts >= 5 (Cochran), "
    "effective size n_ref n_cur / (n_ref + n_cur) capped at max_effective_n; categorical: plus the novelty test",
    score_range=(0.0, 1.0),
)
