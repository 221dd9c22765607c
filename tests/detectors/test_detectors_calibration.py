"""False alarms and power at the default settings, through the daemon's own window path.

Reference: 100k rows, 20 numeric features of mixed shapes (4 of them discrete, so
chi-square by automatic choice) and 5 categorical ones. Windows are binned on the
reference bins and sampled bottom-k (2,000 rows) by ``monitor.windows``, then scored
and decided by ``monitor.evaluate.evaluate_window``.

Rates are printed (``pytest -s``) and bounded:

* no drift, 200 windows: share of windows with any flagged feature <= alpha + 3
  binomial standard errors; with the effect gate switched off (thresholds 0) the
  p-value layer alone must still hold that bound (uniformity of each test's
  p-values on fresh samples is checked in test_detectors_approximation.py);
* 100k-row windows with a shift far below every threshold: nothing flagged,
  although the p-values alone would flag it;
* power at 5,000 rows for the named shifts: flag rate >= 0.9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.config import DriftSettings
from tests.detectors.detectors_pipeline import (
    CATEGORIES,
    CATEGORY_SHARES,
    PipelinePath,
    categorical_columns,
    frame,
    numeric_columns,
)

N_NUMERIC, N_CATEGORICAL = 20, 5
ALPHA = 0.05
NO_GATE = DriftSettings(thresholds={"wasserstein": 0.0, "chisquare": 0.0}, false_alarms_per_day=None)


@pytest.fixture(scope="module")
def path() -> PipelinePath:
    rng = np.random.default_rng(20261123)
    reference = frame(numeric_columns(rng, 100_000, N_NUMERIC), categorical_columns(rng, 100_000, N_CATEGORICAL))
    return PipelinePath(reference)


def _window(rng: np.random.Generator, rows: int):
    return numeric_columns(rng, rows, N_NUMERIC), categorical_columns(rng, rows, N_CATEGORICAL)


def _upper(rate: float, trials: int) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / trials)


@pytest.mark.slow
def test_no_drift_windows_flag_at_most_the_family_wise_rate(path: PipelinePath) -> None:
    rng = np.random.default_rng(1)
    any_default = any_p_only = 0
    methods: set[str] = set()
    windows = 200
    for _ in range(windows):
        aggregate = path.aggregate(*_window(rng, 5000))
        report = path.evaluate(aggregate)
        methods |= {r.method for r in report.features}
        any_default += any(r.drifted for r in report.features)
        any_p_only += any(r.drifted for r in path.evaluate(aggregate, NO_GATE).features)
    rate_default, rate_p_only = any_default / windows, any_p_only / windows
    print(f"\nno drift, {windows} windows x {N_NUMERIC + N_CATEGORICAL} features, BH alpha {ALPHA}: "
          f"any-flag rate {rate_default:.3f} at defaults, {rate_p_only:.3f} with the effect gate off")
    assert methods == {"wasserstein", "chisquare"}
    assert rate_default <= _upper(ALPHA, windows)
    assert rate_p_only <= _upper(ALPHA, windows)


def test_large_windows_with_negligible_shift_flag_nothing(path: PipelinePath) -> None:
    rng = np.random.default_rng(2)
    flagged_default = flagged_p_only = 0
    for _ in range(3):
        numeric, categorical = _window(rng, 100_000)
        numeric = numeric + 0.02 * numeric.std(axis=0)  # 0.02 σ: a fifth of the Wasserstein threshold
        shifted = rng.random(len(categorical)) < 0.04  # 4 % of one column moved to "a": V ≈ 0.027
        categorical[shifted, 0] = "a"
        aggregate = path.aggregate(numeric, categorical)
        report = path.evaluate(aggregate)
        assert max(r.score for r in report.features if r.method == "chisquare" and r.feature == "c0") < 0.05
        flagged_default += sum(r.drifted for r in report.features)
        flagged_p_only += sum(r.drifted for r in path.evaluate(aggregate, NO_GATE).features)
    print(f"\n100k-row windows, negligible shift: {flagged_default} flags at defaults, "
          f"{flagged_p_only} on p-values alone")
    assert flagged_default == 0
    assert flagged_p_only > 0  # the p-values alone would have flagged: the effect gate is what holds


def _flag_rate(path: PipelinePath, feature: str, shift, windows: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(windows):
        numeric, categorical = _window(rng, 5000)
        shift(rng, numeric, categorical)
        report = path.evaluate(path.aggregate(numeric, categorical))
        hits += next(r.drifted for r in report.features if r.feature == feature)
    return hits / windows


def _mean_shift(rng, numeric, categorical) -> None:
    numeric[:, 0] += 0.2  # x0 is standard normal: 0.2 σ


def _variance(rng, numeric, categorical) -> None:
    numeric[:, 5] *= math.sqrt(1.5)  # x5 is standard normal: variance x 1.5


def _new_category(rng, numeric, categorical) -> None:
    fresh = rng.random(len(categorical)) < 0.05
    categorical[fresh, 1] = "brand-new"


@pytest.mark.parametrize(
    ("name", "feature", "shift", "seed"),
    [
        ("mean +0.2 sd", "x0", _mean_shift, 11),
        ("variance x1.5", "x5", _variance, 12),
        ("new category 5%", "c1", _new_category, 13),
    ],
)
def test_power_at_default_settings(path: PipelinePath, name: str, feature: str, shift, seed: int) -> None:
    rate = _flag_rate(path, feature, shift, windows=40, seed=seed)
    print(f"\npower, {name}, 5,000-row windows, 40 windows: flag rate {rate:.3f}")
    assert rate >= 0.9


def test_reference_categories_are_the_simulated_ones(path: PipelinePath) -> None:
    profile = path.baseline.features["c0"]
    assert sorted(profile.categories) == sorted(CATEGORIES.tolist())
    shares = profile.counts[: len(CATEGORIES)] / profile.counts.sum()
    assert np.allclose(np.sort(shares), np.sort(CATEGORY_SHARES), atol=0.01)
