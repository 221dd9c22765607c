"""Bounded samples and p-values: documented error bounds hold, null p-values are uniform.

Error bounds (docs/detectors.md, "Approximation errors"):

* KS from bounded samples: ``|D_sample - D_full| <= dkw_bound(n, m, 0.95)`` in at
  least 95 % of windows (DKW with Massart's constant, triangle inequality).
* Wasserstein from bounded samples: mean ``|W_sample - W_full|`` below
  ``expected_error(...)``; under no drift the mean score matches
  ``expected_error(..., null=True)`` within 15 %.

p-values under no drift, both samples fresh each time: the share below 0.05 lies
within 0.05 ± 3 binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors import REGISTRY
from detectors._util import pool
from detectors.anderson import anderson_2samp
from detectors.base import FeatureData
from detectors.ks import dkw_bound, ks_statistic
from detectors.wasserstein import expected_error, wasserstein_distance

REPEATS = 300


def _bottom_k(rng: np.random.Generator, values: np.ndarray, k: int) -> np.ndarray:
    """Uniform sample without replacement as the windows take it: the k smallest random keys."""
    keys = rng.random(values.size)
    return values[np.argpartition(keys, k - 1)[:k]]


@pytest.mark.parametrize("shift", [0.0, 0.15])
def test_ks_on_bounded_samples_is_within_the_dkw_bound(shift: float) -> None:
    rng = np.random.default_rng(0)
    reference = np.sort(rng.normal(size=100_000))
    ref_sample = np.sort(_bottom_k(rng, reference, 2000))
    bound = dkw_bound(2000, 2000, confidence=0.95)
    errors = []
    for _ in range(REPEATS):
        window = np.sort(rng.normal(shift, 1.0, size=10_000))
        full = ks_statistic(pool(reference, window))
        sampled = ks_statistic(pool(ref_sample, np.sort(_bottom_k(rng, window, 2000))))
        errors.append(abs(sampled - full))
    errors = np.array(errors)
    print(f"\nKS, shift {shift}: bound {bound:.4f}, 95th percentile error {np.quantile(errors, 0.95):.4f}, max {errors.max():.4f}")
    assert np.mean(errors <= bound) >= 0.95


@pytest.mark.parametrize(("name", "draw"), [("normal", lambda r, s, k: r.normal(s, 1, k)), ("lognormal", lambda r, s, k: r.lognormal(s, 0.6, k))])
def test_wasserstein_on_bounded_samples_is_within_the_expected_error(name: str, draw) -> None:
    rng = np.random.default_rng(1)
    reference = np.sort(draw(rng, 0.0, 100_000))
    ref_sample = np.sort(_bottom_k(rng, reference, 2000))
    std = float(np.std(reference, ddof=1))
    errors, null_scores = [], []
    for _ in range(REPEATS // 2):
        window = np.sort(draw(rng, 0.2, 10_000))
        full = wasserstein_distance(pool(reference, window)) / std
        sampled = wasserstein_distance(pool(ref_sample, np.sort(_bottom_k(rng, window, 2000)))) / std
        errors.append(abs(sampled - full))
        # No drift: two fresh samples of the reference distribution (the asymptotic mean
        # is an average over both samples, so neither side is held fixed).
        fresh = np.sort(_bottom_k(rng, reference, 2000))
        same = np.sort(_bottom_k(rng, draw(rng, 0.0, 10_000), 2000))
        null_scores.append(wasserstein_distance(pool(fresh, same)) / std)
    bound = expected_error(ref_sample, 2000, 2000, std)
    null = expected_error(ref_sample, 2000, 2000, std, null=True)
    print(f"\nWasserstein ({name}): mean error {np.mean(errors):.4f} <= bound {bound:.4f}; "
          f"no-drift mean score {np.mean(null_scores):.4f} vs predicted {null:.4f}")
    assert np.mean(errors) <= bound
    assert np.mean(null_scores) == pytest.approx(null, rel=0.15)
    assert null < REGISTRY["wasserstein"].default_threshold / 2


def _rejection_rate(p_values: list[float], level: float = 0.05) -> float:
    return float(np.mean(np.asarray(p_values) < level))


def _within(rate: float, level: float, trials: int) -> bool:
    return abs(rate - level) <= 3 * math.sqrt(level * (1 - level) / trials)


@pytest.mark.parametrize(("n", "m"), [(2000, 2000), (2000, 100), (40, 60)])
def test_anderson_p_values_are_uniform_under_no_drift(n: int, m: int) -> None:
    rng = np.random.default_rng(2)
    p = [anderson_2samp(np.sort(rng.normal(size=n)), np.sort(rng.normal(size=m)))[1] for _ in range(1000)]
    rate = _rejection_rate(p)
    print(f"\nAnderson–Darling {n} vs {m}: share of p < 0.05 = {rate:.3f}")
    assert _within(rate, 0.05, 1000)


@pytest.mark.parametrize("distinct", [2, 6, 73, 400])
def test_anderson_p_values_are_uniform_with_ties(distinct: int) -> None:
    """Integer data: standardised by the permutation moments given the ties (<= 200 values)."""
    rng = np.random.default_rng(3)
    p = [anderson_2samp(np.sort(rng.integers(0, distinct, 2000).astype(float)),
                        np.sort(rng.integers(0, distinct, 1000).astype(float)))[1] for _ in range(1000)]
    rate = _rejection_rate(p)
    print(f"\nAnderson–Darling, {distinct} distinct values: share of p < 0.05 = {rate:.3f}")
    assert _within(rate, 0.05, 1000)


def test_ks_streaming_p_values_are_uniform_under_no_drift() -> None:
    rng = np.random.default_rng(4)
    spec = REGISTRY["ks"]
    p = [spec.score(FeatureData("numeric", np.ones(1), np.ones(1), np.sort(rng.normal(size=2000)), rng.normal(size=2000))).p_value
         for _ in range(1000)]
    rate = _rejection_rate(p)
    print(f"\nKS asymptotic 2000 vs 2000: share of p < 0.05 = {rate:.3f}")
    assert _within(rate, 0.05, 1000)


@pytest.mark.parametrize("window", [5000, 1_000_000])
def test_chisquare_p_values_under_no_drift(window: int) -> None:
    rng = np.random.default_rng(5)
    shares = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
    spec = REGISTRY["chisquare"]
    p = []
    for _ in range(1000):
        ref = np.append(rng.multinomial(100_000, shares), [0, 0]).astype(float)
        cur = np.append(rng.multinomial(window, shares), [0, 0]).astype(float)
        p.append(spec.score(FeatureData("categorical", ref, cur, unseen_bin=6)).p_value)
    rate = _rejection_rate(p)
    print(f"\nchi-square, 100k reference vs {window} window: share of p < 0.05 = {rate:.3f}")
    if window == 5000:  # effective size 4,760 is below the cap: the exact test, calibrated
        assert _within(rate, 0.05, 1000)
    else:  # above the cap the test is deliberately conservative, never liberal
        assert rate <= 0.05


def test_sample_error_shrinks_as_documented_with_sample_size() -> None:
    assert dkw_bound(8000, 8000) == pytest.approx(dkw_bound(2000, 2000) / 2, rel=1e-12)
    rng = np.random.default_rng(6)
    ref = np.sort(rng.normal(size=4000))
    assert expected_error(ref, 8000, 8000) == pytest.approx(expected_error(ref, 2000, 2000) / 2, rel=1e-12)
