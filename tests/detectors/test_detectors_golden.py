"""Golden tests: every statistic against a reference implementation on fixed seeds.

Tolerances: ``TIGHT`` (1e-12 relative) where the computation is the same
algorithm in float64; ``FLOAT32`` (1e-6 relative) against alibi-detect, which
stores its results as float32; looser bounds are stated where a definition
differs and the test checks the conversion.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from detectors import REGISTRY
from detectors._util import pool
from detectors.anderson import anderson_2samp
from detectors.base import DriftResult, FeatureData
from detectors.chisquare import chi2_statistic
from detectors.decision import adjust_p_values, decide

TIGHT = 1e-12
FLOAT32 = 1e-6
GOLDEN = Path(__file__).with_name("golden") / "alibi_golden.json"


def _numeric(seed: int, n: int = 1500, m: int = 1000, shift: float = 0.2, scale: float = 1.2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(shift, scale, size=m)


def _numeric_data(ref: np.ndarray, cur: np.ndarray, *, exact: bool = False, ref_std: float | None = None) -> FeatureData:
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    counts = lambda x: np.bincount(np.searchsorted(edges, x, side="right"), minlength=10).astype(float)
    return FeatureData("numeric", counts(ref), counts(cur), np.sort(ref), cur, ref_std or float(np.std(ref, ddof=1)), exact=exact)


def _categorical(seed: int, n: int = 3000, m: int = 1200):
    rng = np.random.default_rng(seed)
    ref = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "d", "e"], size=m, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    return ref, cur


def _category_counts(ref: np.ndarray, cur: np.ndarray, *, pooled: bool = False) -> FeatureData:
    """The baseline layout: reference categories, "other known" (empty here), "unseen".

    The peers score the raw table (``min_expected=None``); ``pooled`` keeps driftd's
    default pooling (tests/detectors/test_detectors_longtail.py checks that path).
    """
    categories = sorted(set(ref))
    codes = {c: i for i, c in enumerate(categories)}
    unseen = len(categories) + 1
    count = lambda x: np.bincount([codes.get(v, unseen) for v in x], minlength=unseen + 1).astype(float)
    return FeatureData("categorical", count(ref), count(cur), unseen_bin=unseen, min_expected=None if not pooled else 5.0)


# --- scipy -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_equals_scipy(seed: int) -> None:
    ref, cur = _numeric(seed)
    streaming = REGISTRY["ks"].score(_numeric_data(ref, cur))
    exact = REGISTRY["ks"].score(_numeric_data(ref, cur, exact=True))
    asymp, auto = stats.ks_2samp(ref, cur, method="asymp"), stats.ks_2samp(ref, cur)
    assert streaming.score == pytest.approx(asymp.statistic, rel=TIGHT)
    assert streaming.p_value == pytest.approx(asymp.pvalue, rel=TIGHT)
    assert exact.score == pytest.approx(auto.statistic, rel=TIGHT)
    assert exact.p_value == pytest.approx(auto.pvalue, rel=TIGHT)


def test_ks_with_ties_equals_scipy() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 8, 900).astype(float), rng.integers(1, 9, 700).astype(float)
    assert REGISTRY["ks"].score(_numeric_data(ref, cur)).score == pytest.approx(stats.ks_2samp(ref, cur).statistic, rel=TIGHT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wasserstein_equals_scipy_times_reference_std(seed: int) -> None:
    ref, cur = _numeric(seed)
    data = _numeric_data(ref, cur)
    assert REGISTRY["wasserstein"].score(data).score * data.ref_std == pytest.approx(
        stats.wasserstein_distance(ref, cur), rel=TIGHT
    )


@pytest.mark.parametrize(("seed", "n", "m", "scale"), [(0, 300, 300, 1.0), (1, 2000, 2000, 1.1), (2, 100, 2000, 1.5), (3, 50, 30, 1.5)])
def test_anderson_statistic_equals_scipy_and_p_value_agrees(seed: int, n: int, m: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = np.sort(rng.normal(size=n)), np.sort(rng.normal(scale=scale, size=m))
    statistic, p_value = anderson_2samp(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when it caps/floors its p-value
        reference = stats.anderson_ksamp([a, b], variant="midrank")
    assert statistic == pytest.approx(reference.statistic, rel=1e-10)
    # scipy interpolates a table of critical values and clips to [0.001, 0.25];
    # inside that range the asymptotic p-value agrees to 5 % (relative).
    if 0.001 < reference.pvalue < 0.25:
        assert p_value == pytest.approx(reference.pvalue, rel=0.05)
    elif reference.pvalue >= 0.25:
        assert p_value >= 0.2
    else:
        assert p_value <= 0.0012


def test_anderson_with_ties_equals_scipy() -> None:
    rng = np.random.default_rng(4)
    a, b = np.sort(rng.integers(0, 5, 2000).astype(float)), np.sort(rng.integers(0, 6, 1500).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = stats.anderson_ksamp([a, b], variant="midrank")
    assert anderson_2samp(a, b, pool(a, b))[0] == pytest.approx(reference.statistic, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_chisquare_equals_scipy_chi2_contingency(seed: int) -> None:
    data = _category_counts(*_categorical(seed))
    result = REGISTRY["chisquare"].score(data)
    table = np.vstack([data.ref_counts, data.cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert chi2_statistic(table) == (pytest.approx(chi2, rel=TIGHT), dof)
    # With equal row totals the balanced Cramér's V is scipy's association(method="cramer").
    equal = _category_counts(*_categorical(seed, n=2000, m=2000))
    square = np.vstack([equal.ref_counts, equal.cur_counts]).astype(np.int64)
    square = square[:, square.sum(axis=0) > 0]
    assert REGISTRY["chisquare"].score(equal).score == pytest.approx(
        stats.contingency.association(square, method="cramer"), rel=1e-9
    )


def test_chisquare_cap_scales_the_statistic_by_cap_over_effective_size() -> None:
    data = _category_counts(*_categorical(5, n=200_000, m=100_000))
    capped = REGISTRY["chisquare"].score(data)
    uncapped = REGISTRY["chisquare"].score(FeatureData("categorical", data.ref_counts, data.cur_counts, max_effective_n=None, min_expected=None))
    table = np.vstack([data.ref_counts, data.cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    effective = 200_000 * 100_000 / 300_000
    assert uncapped.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-300)
    assert capped.p_value == pytest.approx(stats.chi2.sf(chi2 * 10_000 / effective, dof), rel=1e-9)
    assert capped.score == uncapped.score  # the effect size never depends on the cap


@pytest.mark.parametrize("seed", [0, 1])
def test_jensenshannon_equals_scipy_base_2(seed: int) -> None:
    data = _category_counts(*_categorical(seed))
    p, q = data.ref_counts / data.ref_counts.sum(), data.cur_counts / data.cur_counts.sum()
    assert REGISTRY["jensenshannon"].score(data).score == pytest.approx(distance.jensenshannon(p, q, base=2), rel=1e-9)


def test_hellinger_equals_both_textbook_forms() -> None:
    data = _category_counts(*_categorical(0))
    p, q = data.ref_counts / data.ref_counts.sum(), data.cur_counts / data.cur_counts.sum()
    score = REGISTRY["hellinger"].score(data).score
    assert score == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))), rel=1e-9)
    assert score == pytest.approx(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / math.sqrt(2), rel=1e-9)


# --- corrections: statsmodels (installed with nannyml) ---------------------------------


@pytest.mark.parametrize(("ours", "theirs"), [("bonferroni", "bonferroni"), ("bh", "fdr_bh")])
def test_corrections_equal_statsmodels(ours: str, theirs: str) -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(size=40) ** 3
    assert np.allclose(adjust_p_values(p, ours), multitest.multipletests(p, method=theirs)[1], rtol=TIGHT)


# --- evidently 0.7 stattests -------------------------------------------------------------


def _codes(seed: int):
    """Bin indices as categories: evidently then sees exactly driftd's bins."""
    ref, cur = _numeric(seed, n=4000, m=2000, shift=0.3)
    data = _numeric_data(ref, cur)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    return data, pd.Series(np.searchsorted(edges, ref, side="right")), pd.Series(np.searchsorted(edges, cur, side="right"))


@pytest.mark.parametrize("seed", [0, 1])
def test_psi_equals_evidently_on_the_same_bins(seed: int) -> None:
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    data, ref_codes, cur_codes = _codes(seed)
    # Evidently computes Σ (ref - cur) ln(ref / cur), the same sum; it smooths only
    # exact zeros (none here), driftd floors shares at 1e-4 (all shares are ~0.1).
    value, _ = _psi(ref_codes, cur_codes, ColumnType.Categorical, 0.1)
    assert REGISTRY["psi"].score(data).score == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_jensenshannon_equals_evidently_after_log_base_conversion(seed: int) -> None:
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.core import ColumnType

    data, ref_codes, cur_codes = _codes(seed)
    value, _ = _jensenshannon(ref_codes, cur_codes, ColumnType.Categorical, 0.1)
    # Evidently: natural log (scipy's default base); driftd: base 2. JS_e = JS_2 * sqrt(ln 2).
    assert REGISTRY["jensenshannon"].score(data).score * math.sqrt(math.log(2)) == pytest.approx(value, rel=1e-9)


def test_hellinger_equals_evidently_categorical() -> None:
    from evidently.legacy.calculations.stattests.hellinger_distance import _hellinger_distance
    from evidently.legacy.core import ColumnType

    ref, cur = _categorical(2)
    value, _ = _hellinger_distance(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.1)
    assert REGISTRY["hellinger"].score(_category_counts(ref, cur)).score == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_wasserstein_equals_evidently_with_its_std(seed: int) -> None:
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (
        _wasserstein_distance_norm,
    )
    from evidently.legacy.core import ColumnType

    ref, cur = _numeric(seed)
    value, _ = _wasserstein_distance_norm(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.1)
    # Evidently normalises by np.std (ddof=0); driftd's profiles keep ddof=1. Same ddof, same value:
    assert REGISTRY["wasserstein"].score(_numeric_data(ref, cur, ref_std=float(np.std(ref)))).score == pytest.approx(value, rel=1e-9)


def test_ks_p_value_equals_evidently() -> None:
    from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
    from evidently.legacy.core import ColumnType

    ref, cur = _numeric(7, n=800, m=600, shift=0.1, scale=1.0)
    p_value, _ = _ks_stat_test(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.05)
    assert REGISTRY["ks"].score(_numeric_data(ref, cur, exact=True)).p_value == pytest.approx(p_value, rel=TIGHT)


def test_chisquare_converges_to_evidentlys_goodness_of_fit() -> None:
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
    from evidently.legacy.core import ColumnType

    ref, cur = _categorical(3, n=3000, m=1500)
    cur = np.where(cur == "e", "a", cur)  # evidently's goodness-of-fit cannot take a category the reference lacks
    p_value, _ = _chi_stat_test(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.05)
    # Evidently tests the window against the reference shares taken as exact (goodness of
    # fit); driftd tests homogeneity of two samples. With the reference counts scaled up
    # by 10^6 (an "exact" reference) and no cap, homogeneity converges to goodness of fit.
    data = _category_counts(ref, cur)
    exact_reference = FeatureData("categorical", data.ref_counts * 1e6, data.cur_counts, max_effective_n=None, min_expected=None)
    assert REGISTRY["chisquare"].score(exact_reference).p_value == pytest.approx(p_value, rel=1e-4)
    assert REGISTRY["chisquare"].score(data).p_value > p_value  # the finite reference adds variance


# --- nannyml 0.13 univariate calculator -------------------------------------------------


@pytest.fixture(scope="module")
def nannyml_result():
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    nml = pytest.importorskip("nannyml")
    rng = np.random.default_rng(0)
    ref_x, cur_x = rng.normal(size=3000), rng.normal(0.3, 1.2, size=1000)
    ref_c, cur_c = _categorical(1, n=3000, m=1000)
    reference = pd.DataFrame({"x": ref_x, "c": ref_c})
    current = pd.DataFrame({"x": cur_x, "c": cur_c})
    calculator = nml.UnivariateDriftCalculator(
        column_names=["x", "c"],
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon", "wasserstein", "hellinger"],
        categorical_methods=["chi2", "jensen_shannon", "hellinger"],
        chunk_number=1,
    )
    calculator.fit(reference)
    row = calculator.calculate(current).filter(period="analysis").to_df().iloc[0]
    return reference, current, row


def test_nannyml_categorical_methods_equal(nannyml_result) -> None:
    reference, current, row = nannyml_result
    data = _category_counts(reference["c"].to_numpy(), current["c"].to_numpy())
    # Same definitions: base-2 JS and ‖√p − √q‖/√2 on the reference categories plus a
    # leftover bin for unseen ones (driftd's "unseen" bin).
    assert REGISTRY["jensenshannon"].score(data).score == pytest.approx(row[("c", "jensen_shannon", "value")], rel=1e-9)
    assert REGISTRY["hellinger"].score(data).score == pytest.approx(row[("c", "hellinger", "value")], rel=1e-9)
    table = np.vstack([data.ref_counts, data.cur_counts])
    assert chi2_statistic(table[:, table.sum(axis=0) > 0])[0] == pytest.approx(row[("c", "chi2", "value")], rel=1e-9)
    assert (REGISTRY["chisquare"].score(data).p_value < 0.05) == bool(row[("c", "chi2", "alert")])


def test_nannyml_continuous_methods_equal(nannyml_result) -> None:
    reference, current, row = nannyml_result
    ref, cur = reference["x"].to_numpy(), current["x"].to_numpy()
    data = _numeric_data(ref, cur, exact=True)
    # Below 10,000 reference rows NannyML computes KS and W1 on the raw data.
    assert REGISTRY["ks"].score(data).score == pytest.approx(row[("x", "kolmogorov_smirnov", "value")], rel=TIGHT)
    assert REGISTRY["wasserstein"].score(data).score * data.ref_std == pytest.approx(row[("x", "wasserstein", "value")], rel=1e-9)
    # NannyML bins continuous JS and Hellinger with numpy's 'doane' edges on the reference
    # plus a leftover bin for values outside them; driftd uses reference quantiles.
    # Fed NannyML's bins, driftd's formulas give NannyML's values.
    edges = np.histogram_bin_edges(ref, bins="doane")
    ref_counts = np.append(np.histogram(ref, edges)[0], 0).astype(float)
    in_range = np.histogram(cur, edges)[0]
    cur_counts = np.append(in_range, len(cur) - in_range.sum()).astype(float)
    binned = FeatureData("numeric", ref_counts, cur_counts)
    assert REGISTRY["jensenshannon"].score(binned).score == pytest.approx(row[("x", "jensen_shannon", "value")], rel=1e-9)
    assert REGISTRY["hellinger"].score(binned).score == pytest.approx(row[("x", "hellinger", "value")], rel=1e-9)


# --- alibi-detect 0.13 (golden JSON from its own environment) ---------------------------


def _alibi_cases() -> list[dict]:
    return json.loads(GOLDEN.read_text())["cases"]


@pytest.mark.parametrize("case", _alibi_cases(), ids=lambda c: f"seed{c['seed']}")
def test_alibi_tabular_and_ks_drift(case: dict) -> None:
    ref, cur = np.asarray(case["reference"]), np.asarray(case["current"])
    results = []
    for column in range(ref.shape[1]):
        if column in case["categorical_columns"]:
            data = _category_counts(ref[:, column], cur[:, column])
            score = REGISTRY["chisquare"].score(data)
            table = np.vstack([data.ref_counts, data.cur_counts])
            distance_value = chi2_statistic(table[:, table.sum(axis=0) > 0])[0]
            method = "chisquare"
        else:
            # alibi runs ks_2samp(mode="asymp"): driftd's streaming KS path.
            score = REGISTRY["ks"].score(_numeric_data(ref[:, column], cur[:, column]))
            distance_value = score.score
            method = "ks"
            assert score.score == pytest.approx(case["ks_distances"][column], rel=FLOAT32)
            assert score.p_value == pytest.approx(case["ks_p_values"][column], rel=FLOAT32, abs=1e-30)
        assert distance_value == pytest.approx(case["tabular_feature_distances"][column], rel=FLOAT32)
        assert score.p_value == pytest.approx(case["tabular_feature_p_values"][column], rel=FLOAT32, abs=1e-30)
        # Effect threshold 0 switches driftd's gate off: alibi decides on p-values alone.
        results.append(DriftResult(method, str(column), score.score, score.p_value, 0.0, False))
    feature_flags = [r.drifted for r in decide(results, correction="none", alpha=0.05)]
    assert [int(f) for f in feature_flags] == case["tabular_feature_is_drift"]
    assert any(r.drifted for r in decide(results, "bonferroni", 0.05)) == bool(case["tabular_batch_is_drift_bonferroni"])
    assert any(r.drifted for r in decide(results, "bh", 0.05)) == bool(case["tabular_batch_is_drift_fdr"])
