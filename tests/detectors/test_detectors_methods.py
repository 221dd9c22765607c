"""One generic check suite over every registered univariate method, plus decisions.

Like river's detector checks: each method in :data:`detectors.registry.REGISTRY`
is held to the same contract (documented default with a source, doctest, score in
its declared range, quiet on identical data, loud on a large shift, no crash on
empty or degenerate input).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from detectors import REGISTRY, choose_method, get_method, methods_for
from detectors.base import MIN_SAMPLE_SIZE, DriftResult, FeatureData, MethodSpec
from detectors.decision import adjust_p_values, decide, drift_share, weighted_drift_score

UNIVARIATE = [name for name, spec in REGISTRY.items() if "multivariate" not in spec.kinds]


def _data(kind: str, *, shift: float = 0.0, seed: int = 0, rows: int = 3000) -> FeatureData:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        ref, cur = rng.normal(size=rows), rng.normal(shift, 1.0 + shift, size=rows)
        edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
        count = lambda x: np.bincount(np.searchsorted(edges, x, side="right"), minlength=10).astype(float)
        return FeatureData("numeric", count(ref), count(cur), np.sort(ref), cur, float(np.std(ref, ddof=1)))
    shares = np.array([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])  # top-k, other known, unseen
    moved = shares * (1 - shift) + shift * np.array([0, 0, 0, 0.5, 0, 0.5])
    return FeatureData("categorical", rng.multinomial(rows, shares).astype(float),
                       rng.multinomial(rows, moved).astype(float), unseen_bin=5)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registration_is_complete(name: str) -> None:
    spec = REGISTRY[name]
    assert isinstance(spec, MethodSpec) and spec.name == name
    assert spec.kinds and spec.kinds <= {"numeric", "categorical", "multivariate"}
    assert spec.source and spec.description
    assert spec.score_range[0] <= spec.default_threshold <= spec.score_range[1]
    module = importlib.import_module(spec.score.__module__)
    assert ">>>" in (module.__doc__ or ""), f"{module.__name__} has no doctest"


@pytest.mark.parametrize("name", UNIVARIATE)
def test_quiet_on_identical_distributions_and_loud_on_a_large_shift(name: str) -> None:
    spec = REGISTRY[name]
    for kind in spec.kinds:
        same = spec.score(_data(kind, shift=0.0, seed=1))
        moved = spec.score(_data(kind, shift=0.6, seed=1))
        assert spec.score_range[0] <= same.score <= spec.score_range[1]
        assert not spec.passes(same.score, spec.default_threshold), (kind, same)
        assert spec.passes(moved.score, spec.default_threshold), (kind, moved)
        if spec.test:
            assert same.p_value is not None and same.p_value > 0.01
            assert moved.p_value is not None and moved.p_value < 1e-6
        else:
            assert same.p_value is None


@pytest.mark.parametrize("name", UNIVARIATE)
def test_empty_window_scores_nan_without_crashing(name: str) -> None:
    spec = REGISTRY[name]
    for kind in spec.kinds:
        full = _data(kind)
        empty = FeatureData(kind, full.ref_counts, np.zeros_like(full.cur_counts), full.ref_sample,
                            np.empty(0), full.ref_std, full.unseen_bin)
        result = spec.score(empty)
        assert math.isnan(result.score) or result.score == 0.0
        assert not spec.passes(result.score, spec.default_threshold) or math.isinf(result.score)


def test_missing_values_in_samples_are_ignored() -> None:
    data = _data("numeric", shift=0.3)
    noisy = FeatureData("numeric", data.ref_counts, data.cur_counts, np.append(data.ref_sample, np.nan),
                        np.append(data.cur_sample, [np.nan, np.inf]), data.ref_std)
    for name in ("ks", "wasserstein"):
        assert REGISTRY[name].score(noisy) == REGISTRY[name].score(data)


def test_a_few_sampled_values_never_decide_drift() -> None:
    data = _data("numeric")
    for values in (np.array([50.0]), np.full(MIN_SAMPLE_SIZE - 1, 50.0)):
        few = FeatureData("numeric", data.ref_counts, data.cur_counts, data.ref_sample, values, data.ref_std)
        for name in ("ks", "wasserstein"):
            spec = REGISTRY[name]
            result = spec.score(few)
            assert math.isnan(result.score) and result.p_value is None, name
    enough = FeatureData("numeric", data.ref_counts, data.cur_counts, data.ref_sample, np.full(MIN_SAMPLE_SIZE, 50.0), data.ref_std)
    ks_small = REGISTRY["ks"].score(enough)
    from scipy import stats

    assert ks_small.p_value == pytest.approx(stats.ks_2samp(data.ref_sample, enough.cur_sample).pvalue, rel=1e-12)
    assert REGISTRY["wasserstein"].score(enough).p_value < 1e-3


def test_constant_reference_that_moves_is_infinitely_far() -> None:
    data = FeatureData("numeric", np.ones(1), np.ones(1), np.zeros(50), np.ones(50), ref_std=0.0)
    result = REGISTRY["wasserstein"].score(data)
    assert math.isinf(result.score) and REGISTRY["wasserstein"].passes(result.score, 0.1)
    assert REGISTRY["wasserstein"].score(FeatureData("numeric", np.ones(1), np.ones(1), np.zeros(50), np.zeros(50), 0.0)).score == 0.0


def test_unseen_share_counts_only_the_unseen_bin() -> None:
    data = FeatureData("categorical", np.array([5.0, 5, 0, 0]), np.array([3.0, 3, 2, 2]), unseen_bin=3)
    assert REGISTRY["unseen_share"].score(data).score == 0.2


def test_automatic_choice() -> None:
    assert choose_method("numeric") == "wasserstein"
    assert choose_method("numeric", n_distinct=500) == "wasserstein"
    assert choose_method("numeric", n_distinct=20) == "chisquare"
    assert choose_method("categorical", n_distinct=3) == "chisquare"
    assert choose_method("multivariate") == "domain_classifier"
    with pytest.raises(ValueError, match="numeric, categorical, multivariate"):
        choose_method("text")
    for kind in ("numeric", "categorical", "multivariate"):
        assert choose_method(kind) in methods_for(kind)


def test_unknown_method_names_the_allowed_ones() -> None:
    with pytest.raises(KeyError, match="allowed: chisquare, domain_classifier"):
        get_method("kl")


# --- decisions ------------------------------------------------------------------------


def _result(feature: str, score: float, p: float | None, method: str = "ks", threshold: float = 0.1) -> DriftResult:
    return DriftResult(method, feature, score, p, threshold, False)


def test_flag_needs_both_effect_and_corrected_p_value() -> None:
    results = [
        _result("big-effect-significant", 0.3, 1e-6),
        _result("big-effect-not-significant", 0.3, 0.2),
        _result("small-effect-significant", 0.05, 1e-12),
        _result("psi-no-p-value", 0.25, None, "psi", 0.2),
        _result("nan", float("nan"), None, "psi", 0.2),
    ]
    assert [r.drifted for r in decide(results, "bonferroni", 0.05)] == [True, False, False, True, False]


def test_bonferroni_and_bh_differ_as_they_should() -> None:
    p = [0.001, 0.012, 0.02, 0.04, 0.6]
    results = [_result(f"f{i}", 0.5, value) for i, value in enumerate(p)]
    assert [r.drifted for r in decide(results, "bonferroni", 0.05)] == [True, False, False, False, False]
    assert [r.drifted for r in decide(results, "bh", 0.05)] == [True, True, True, False, False]
    assert [r.drifted for r in decide(results, "none", 0.05)] == [True, True, True, True, False]
    assert np.allclose(adjust_p_values(p, "bh"), [0.005, 0.03, 0.0333333333, 0.05, 0.6])
    with pytest.raises(ValueError, match="bonferroni, bh, none"):
        adjust_p_values(p, "holm")


def test_drift_share_and_importance_weighted_score() -> None:
    results = decide([_result("a", 0.5, 1e-9), _result("b", 0.0, 0.9), _result("c", 0.0, 0.9), _result("d", 0.5, 1e-9)], "bh")
    assert drift_share(results) == 0.5
    assert weighted_drift_score(results) == 0.5  # uniform weights without importances
    assert weighted_drift_score(results, {"a": 3.0, "b": 1.0, "c": 1.0, "d": 0.0}) == pytest.approx(3 / 5)
    assert weighted_drift_score(results, {"zzz": 1.0}) == 0.5  # unknown features: back to uniform
    assert weighted_drift_score(results, {"a": -2.0, "b": 1.0}) == 0.0  # negative importances count as zero
    assert drift_share([]) == 0.0 and weighted_drift_score([]) == 0.0


@pytest.mark.parametrize("name", UNIVARIATE)
def test_vectorised_scoring_equals_one_by_one(name: str) -> None:
    spec = REGISTRY[name]
    rng = np.random.default_rng(9)
    batch = []
    for j in range(8):
        kind = sorted(spec.kinds)[j % len(spec.kinds)]
        data = _data(kind, shift=0.05 * j, seed=j, rows=1500)
        if kind == "numeric" and j == 2:  # ties: the one-feature path inside the batch
            data = FeatureData("numeric", data.ref_counts, data.cur_counts, data.ref_sample, np.round(data.cur_sample, 1), data.ref_std)
        if kind == "numeric" and j == 4:  # missing values: a group of its own size
            data = FeatureData("numeric", data.ref_counts, data.cur_counts, data.ref_sample,
                               np.where(rng.random(1500) < 0.1, np.nan, data.cur_sample), data.ref_std)
        batch.append(data)
    one_by_one = [spec.score(d) for d in batch]
    together = spec.score_all(batch)
    for a, b in zip(one_by_one, together):
        assert b.score == pytest.approx(a.score, rel=1e-12, abs=1e-15)
        assert (a.p_value is None) == (b.p_value is None)
        if a.p_value is not None:
            assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-300)
