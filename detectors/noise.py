"""Noise floors: how large each effect size gets by chance at a window's size.

A fixed effect-size threshold means different things at different window sizes:
with no drift at all, Cramér's V of a 400-event window against a large reference
exceeds 0.1 about one time in ten on a 10-bin table, while a 40,000-event window
never does. :func:`noise_floor` gives, per method, the value the effect size stays
below with probability ``1 - level`` when the window comes from the reference's own
distribution; :func:`effective_threshold` uses ``max(configured, floor)``, so the
configured threshold keeps its meaning ("the smallest shift worth acting on") on
large windows and small windows no longer pass it by chance.

Count-based methods (asymptotics of the 2 x k table with ``k`` bins after pooling
and ``n_eff = n_ref n_cur / (n_ref + n_cur)``, ``X ~ chi2(k - 1)`` its Pearson
statistic; ``D = Σ (p - q)² / π`` then satisfies ``n_eff D → X``):

* ``chisquare`` (balanced Cramér's V, ``V² ≈ D / 4``): ``sqrt(chi2_{1-level}(k-1) / (4 n_eff))``;
* ``psi`` (Jeffreys divergence, ``PSI ≈ D``): ``chi2_{1-level}(k-1) / n_eff``;
* ``jensenshannon`` (base 2, ``JS² ≈ D / (8 ln 2)``): ``sqrt(chi2_{1-level}(k-1) / (8 ln 2 n_eff))``;
* ``hellinger`` (``H² ≈ D / 8``): ``sqrt(chi2_{1-level}(k-1) / (8 n_eff))``.

Sample-based methods use the sizes ``n``, ``m`` of the samples compared:

* ``ks``: the upper ``level`` quantile of Kolmogorov's distribution at
  ``round(n m / (n + m))`` (``scipy.stats.kstwo.isf``, the p-value's own law);
* ``wasserstein`` (W1 / σ): ``sqrt(n_eff) W1`` tends to ``∫ |B(F(x))| dx`` for a
  Brownian bridge ``B`` (del Barrio, Giné & Matrán 1999). Its mean
  ``sqrt(2/π) ∫ sqrt(F(1-F)) dx`` and variance (from ``E|X||Y|`` of a bivariate normal)
  are computed on the reference sample (256 quantile cells), and the quantile is that
  of a Gamma law with the same two moments. Checked by Monte Carlo against
  ``scipy.stats.wasserstein_distance`` (tests/detectors/test_detectors_budget.py):
  with 100k reference rows the 0.999 quantile is within -1 % / +12 % of the simulated
  one (normal, exponential, lognormal); with a 2,000-row reference sample the
  lognormal floor is passed 4.3 % of the time at level 2 % (a heavy tail converges
  slowly), so it is an approximation; the Anderson–Darling p-value, at the same
  level, still gates every Wasserstein flag.

Methods with no floor (``unseen_share`` has its own binomial test, multivariate
methods their own calibrated tests) keep the configured threshold.

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> ref = np.full(10, 10_000)
>>> round(noise_floor("chisquare", FeatureData("numeric", ref, np.full(10, 40)), 0.001), 4)
0.1323
>>> round(noise_floor("chisquare", FeatureData("numeric", ref, np.full(10, 4_000)), 0.001), 4)
0.0156
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import stats

from detectors._util import sorted_finite
from detectors.base import MIN_SAMPLE_SIZE, DriftResult, FeatureData
from detectors.pooling import pool_table

__all__ = ["FLOOR_METHODS", "bridge_moments", "effective_threshold", "noise_floor", "with_floors"]

FLOOR_METHODS = frozenset({"chisquare", "psi", "jensenshannon", "hellinger", "ks", "wasserstein"})


def _table_quantile(data: FeatureData, level: float) -> tuple[float, float] | None:
    """``(chi2_{1-level}(k - 1), n_eff)`` of the table the count methods score, None if empty."""
    ref = np.asarray(data.ref_counts, dtype=np.float64)
    cur = np.asarray(data.cur_counts, dtype=np.float64)
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref <= 0 or n_cur <= 0:
        return None
    if data.min_expected is not None:
        pooled = pool_table(ref, cur, data.unseen_bin, data.min_expected)
        ref = pooled.ref
    bins = int(np.count_nonzero(ref > 0))
    if bins < 2:
        return None
    return float(stats.chi2.isf(level, bins - 1)), float(n_ref * n_cur / (n_ref + n_cur))


def _sample_sizes(data: FeatureData) -> tuple[int, int] | None:
    n, m = sorted_finite(data.ref_sample).size, sorted_finite(data.cur_sample).size
    return (n, m) if min(n, m) >= MIN_SAMPLE_SIZE else None


# Reference samples do not change while the daemon runs: their moments are cached
# (values keep the arrays alive so that ids are not reused; bounded).
_MOMENTS: dict[int, tuple[np.ndarray, tuple[float, float, float] | None]] = {}
CELLS = 256


def bridge_moments(ref_sample: np.ndarray | None) -> tuple[float, float, float] | None:
    """Mean and standard deviation of ``∫ |B(F(x))| dx`` under the reference, and its std.

    None when the reference sample has fewer than ``MIN_SAMPLE_SIZE`` finite values.
    """
    if ref_sample is None:
        return None
    cached = _MOMENTS.get(id(ref_sample))
    if cached is not None and cached[0] is ref_sample:
        return cached[1]
    ref = sorted_finite(ref_sample)
    result = None
    if ref.size >= MIN_SAMPLE_SIZE:
        edges = np.linspace(0.0, 1.0, CELLS + 1)
        widths = np.diff(np.quantile(ref, edges))
        u = (edges[:-1] + edges[1:]) / 2.0
        sd_bridge = np.sqrt(u * (1.0 - u))
        rho = np.clip((np.minimum.outer(u, u) - np.outer(u, u)) / np.outer(sd_bridge, sd_bridge), -1.0, 1.0)
        # Cov(|X|, |Y|) of a standard bivariate normal pair with correlation rho, scaled.
        cov = (2.0 / math.pi) * np.outer(sd_bridge, sd_bridge) * (np.sqrt(1.0 - rho**2) + rho * np.arcsin(rho) - 1.0)
        mean = math.sqrt(2.0 / math.pi) * float(np.dot(sd_bridge, widths))
        result = (mean, math.sqrt(max(float(widths @ cov @ widths), 0.0)), float(np.std(ref, ddof=1)))
    if len(_MOMENTS) > 10_000:
        _MOMENTS.clear()
    _MOMENTS[id(ref_sample)] = (ref_sample, result)
    return result


def noise_floor(method: str, data: FeatureData, level: float) -> float:
    """The effect size that ``method`` passes with probability ``level`` when nothing drifted.

    Parameters
    ----------
    method
        A registered method name; methods outside :data:`FLOOR_METHODS` return 0.
    data
        The window and reference as the method will score them.
    level
        Per-test false-alarm probability, in (0, 1).

    Returns 0 when the data cannot be scored (the method then answers NaN anyway).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    if method in ("chisquare", "psi", "jensenshannon", "hellinger"):
        table = _table_quantile(data, level)
        if table is None:
            return 0.0
        quantile, n_eff = table
        divisor = {"chisquare": 4.0, "psi": None, "jensenshannon": 8.0 * math.log(2.0), "hellinger": 8.0}[method]
        return quantile / n_eff if divisor is None else math.sqrt(quantile / (divisor * n_eff))
    if method in ("ks", "wasserstein"):
        sizes = _sample_sizes(data)
        if sizes is None:
            return 0.0
        n, m = sizes
        n_eff = n * m / (n + m)
        if method == "ks":
            return float(stats.kstwo.isf(level, max(1, round(n_eff))))
        moments = bridge_moments(data.ref_sample)
        if moments is None:
            return 0.0
        mean, sd, scale = moments
        if data.ref_std is not None and np.isfinite(data.ref_std) and data.ref_std > 0:
            scale = float(data.ref_std)
        if sd <= 0 or scale <= 0:
            return 0.0
        quantile = stats.gamma.isf(level, (mean / sd) ** 2, scale=sd**2 / mean)
        return float(quantile / (math.sqrt(n_eff) * scale))
    return 0.0


def effective_threshold(method: str, data: FeatureData, threshold: float, level: float | None) -> float:
    """``max(threshold, noise_floor(method, data, level))``; ``threshold`` when ``level`` is None."""
    if level is None or method not in FLOOR_METHODS:
        return float(threshold)
    return float(max(threshold, noise_floor(method, data, level)))


def with_floors(
    results: Sequence[DriftResult], data: Sequence[FeatureData], level: float | None
) -> list[DriftResult]:
    """``results`` with each threshold raised to its noise floor at ``level`` (same order).

    ``data[i]`` is the :class:`FeatureData` ``results[i]`` was scored on. NaN scores keep
    their threshold (they are never flagged).
    """
    if level is None:
        return list(results)
    return [
        r if not np.isfinite(r.score) else replace(r, threshold=effective_threshold(r.method, d, r.threshold, level))
        for r, d in zip(results, data, strict=True)
    ]
