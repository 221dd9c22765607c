"""Long-tailed categories (issue 19): no false alarms from the tail, power kept, statistics checked.

Data: ``tests/detectors/longtail.py`` — a "city" column from Zipf(1.1) over 5,000 or
50,000 levels (reference 50,000 rows, so most levels of the larger set are never
seen, and the baseline stores only 1,000 category names), next to a normal and a
lognormal feature. Windows are scored twice: through the daemon's own decision path
(:class:`~tests.detectors.detectors_pipeline.PipelinePath`: ``Layout.bin_batch``,
``WindowAggregate.add``, ``evaluate_window``) and by ``run_comparison`` with its
defaults (what ``driftd compare`` runs).

False-alarm bound: with ``alpha = 0.05`` every corrected test flags a no-drift
feature at most at rate 0.05 (the effect-size gate only lowers it). If the true
rate were 0.05, a count of flagged windows above ``binom.ppf(0.999, n, 0.05)`` would
have probability below 0.001; each cell asserts that bound for the "city" feature
and for "any feature of the window" (a window with three features is flagged at
most at ~3 x 0.05 without correction; the bound used for it is stated below).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from detectors import REGISTRY, decide
from detectors.base import DriftResult, FeatureData
from detectors.chisquare import chi2_statistic
from detectors.pooling import MIN_EXPECTED, pool_table
from detectors.unseen import novelty, unseen_estimate
from monitor.baseline import Baseline
from monitor.compare import run_comparison
from monitor.windows import Layout
from tests.detectors.detectors_pipeline import PipelinePath
from tests.detectors.longtail import LongTail, split

ALPHA = 0.05
WINDOW_ROWS = (300, 1_000, 5_000, 20_000)
DAEMON_WINDOWS = 30  # per (levels, rows) cell
COMPARE_WINDOWS = 10


def _bound(trials: int, rate: float = ALPHA) -> int:
    """Largest count of flags consistent (at the 0.001 level) with a flag rate of ``rate``."""
    return int(stats.binom.ppf(0.999, trials, rate))


@pytest.fixture(scope="module", params=[5_000, 50_000], ids=lambda levels: f"zipf{levels}")
def tail(request) -> tuple[LongTail, PipelinePath]:
    long_tail = LongTail(request.param)
    return long_tail, PipelinePath(long_tail.reference())


def _city(results: list[DriftResult]) -> DriftResult:
    return next(r for r in results if r.feature == "city")


# --- no false alarms from the tail ---------------------------------------------------------


@pytest.mark.parametrize("rows", WINDOW_ROWS)
def test_no_drift_windows_flag_at_most_alpha_in_the_daemon_path(tail, rows: int) -> None:
    long_tail, path = tail
    rng = np.random.default_rng(rows)
    city_flags = any_flags = 0
    for _ in range(DAEMON_WINDOWS):
        report = path.evaluate(path.aggregate(*split(long_tail.frame(rng, rows))))
        city_flags += _city(report.features).drifted
        any_flags += any(r.drifted for r in report.features)
    print(
        f"\n{long_tail.levels} levels, {rows} rows: city {city_flags}/{DAEMON_WINDOWS}, any {any_flags}"
    )
    assert city_flags <= _bound(DAEMON_WINDOWS)
    # Three features, each at most at alpha: the window at most at 3 alpha (union bound).
    assert any_flags <= _bound(DAEMON_WINDOWS, 3 * ALPHA)


@pytest.mark.parametrize("rows", WINDOW_ROWS)
def test_no_drift_windows_flag_at_most_alpha_in_run_comparison(tail, rows: int) -> None:
    long_tail, _ = tail
    reference = long_tail.reference()
    rng = np.random.default_rng(10 + rows)
    flags = 0
    for _ in range(COMPARE_WINDOWS):
        comparison = run_comparison(reference, long_tail.frame(rng, rows), multivariate="none")
        flags += _city([row.result for row in comparison.rows]).drifted
    assert flags <= _bound(COMPARE_WINDOWS)


def test_one_never_seen_value_does_not_flag() -> None:
    """The issue's mechanism: one unseen event used to add ~n_ref / n_window to chi²."""
    shares = np.array([0.5, 0.3, 0.2, 0.0, 0.0])  # three categories, "other known", "unseen"
    reference = shares * 50_000
    window = shares * 300
    window[4] = 1
    result = REGISTRY["chisquare"].score(
        FeatureData("categorical", reference, window, unseen_bin=4)
    )
    assert result.p_value > 0.5 and result.score < 0.01
    assert not decide([result.result("chisquare", "city", 0.1)])[0].drifted
    # The raw table (min_expected=None, what scipy would test) is where it used to go wrong.
    old = REGISTRY["chisquare"].score(
        FeatureData("categorical", reference, window, unseen_bin=4, min_expected=None)
    )
    assert old.p_value < 1e-10


# --- power kept --------------------------------------------------------------------------


POWER_RUNS = 20


@pytest.mark.parametrize(
    "change",
    [{"new_share": 0.05}, {"move": (0, 1, 0.05)}],
    ids=["new-category-5pct", "top-share-move-5pt"],
)
def test_real_changes_are_flagged_in_at_least_90_percent_of_runs(tail, change: dict) -> None:
    long_tail, path = tail
    rng = np.random.default_rng(7)
    flags = 0
    for run in range(POWER_RUNS):
        window = long_tail.frame(rng, 5_000, **change)
        flags += _city(path.evaluate(path.aggregate(*split(window))).features).drifted
        if run < 3:  # the offline path decides the same way
            comparison = run_comparison(long_tail.reference(), window, multivariate="none")
            assert _city([row.result for row in comparison.rows]).drifted
    print(f"\n{long_tail.levels} levels, {change}: flagged {flags}/{POWER_RUNS}")
    assert flags >= 0.9 * POWER_RUNS


def test_a_new_category_is_caught_by_novelty_not_by_the_tail(tail) -> None:
    long_tail, path = tail
    report = path.evaluate(
        path.aggregate(*split(long_tail.frame(np.random.default_rng(3), 5_000, new_share=0.05)))
    )
    city = _city(report.features)
    assert city.score < city.threshold  # Cramér's V of the pooled table barely moves ...
    assert city.novelty >= 0.03 and city.drifted  # ... the excess unseen share does
    assert report.unseen_expected_ratio["city"] == pytest.approx(
        path.baseline.features["city"].unseen_estimate
    )


# --- statistics against reference implementations ----------------------------------------


def _long_tail_counts(levels: int = 5_000, rows: int = 1_000, seed: int = 0) -> FeatureData:
    long_tail = LongTail(levels)
    layout = PipelinePath(long_tail.reference(seed)).layout
    profile = layout.baseline.features["city"]
    window = long_tail.frame(np.random.default_rng(seed + 1), rows, new_share=0.01)
    codes = layout.categorical[0].bins(window["city"].to_numpy(dtype=object))
    counts = np.bincount(codes, minlength=profile.n_bins).astype(np.float64)
    return FeatureData(
        "categorical",
        profile.counts,
        counts,
        unseen_bin=profile.unseen_bin,
        expected_unseen=profile.unseen_estimate,
        max_effective_n=None,
    )


def test_pooled_chisquare_equals_scipy_on_the_pooled_table() -> None:
    data = _long_tail_counts()
    pooled = pool_table(data.ref_counts, data.cur_counts, data.unseen_bin)
    # Cochran's rule on the window row, from reference shares.
    assert np.all(pooled.cur.sum() * pooled.ref / pooled.ref.sum() >= MIN_EXPECTED)
    assert pooled.ref.sum() == data.ref_counts.sum() and pooled.cur.sum() == data.cur_counts.sum()
    table = np.vstack([pooled.ref, pooled.cur])
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    result = REGISTRY["chisquare"].score(data)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert chi2_statistic(table) == (pytest.approx(chi2, rel=1e-12), dof)


def test_effect_sizes_on_the_pooled_table_equal_scipy_and_the_formulas() -> None:
    data = _long_tail_counts()
    pooled = pool_table(data.ref_counts, data.cur_counts, data.unseen_bin)
    p, q = pooled.ref / pooled.ref.sum(), pooled.cur / pooled.cur.sum()
    assert REGISTRY["jensenshannon"].score(data).score == pytest.approx(
        distance.jensenshannon(p, q, base=2), rel=1e-9
    )
    assert REGISTRY["hellinger"].score(data).score == pytest.approx(
        np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2), rel=1e-9
    )
    pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert REGISTRY["psi"].score(data).score == pytest.approx(
        np.sum((qf - pf) * np.log(qf / pf)), rel=1e-12
    )
    # Balanced V is scipy's Cramér's V of the table with equal row totals (rounded to integers).
    equal = np.vstack([pooled.ref / pooled.ref.sum(), pooled.cur / pooled.cur.sum()]) * 1e7
    cramer = stats.contingency.association(np.round(equal).astype(np.int64), method="cramer")
    assert REGISTRY["chisquare"].score(data).score == pytest.approx(cramer, abs=1e-5)


@pytest.mark.parametrize(
    "x, y, n, n_ref", [(7, 3, 1_000, 50_000), (40, 300, 5_000, 50_000), (0, 12, 300, 50_000)]
)
def test_novelty_p_value_equals_scipy_binomtest(x: int, y: int, n: int, n_ref: int) -> None:
    ref = np.array(
        [n_ref - y, y, 0.0]
    )  # unseen-bin reference count is irrelevant: the estimate carries it
    cur = np.array([n - x, 0.0, x])
    data = FeatureData(
        "categorical", ref, cur, unseen_bin=2, expected_unseen=y / n_ref, max_effective_n=None
    )
    excess, p_value = novelty(data)
    expected = (
        stats.binomtest(x, x + y, n / (n + n_ref), alternative="greater").pvalue if x + y else 1.0
    )
    assert excess == pytest.approx(x / n - y / n_ref)
    assert p_value == pytest.approx(expected, rel=1e-9)


def test_unseen_estimate_is_good_turing() -> None:
    counts = np.array([9, 5, 3, 3, 2, 2, 2, 1, 1, 1, 1])
    assert unseen_estimate(counts, len(counts)) == pytest.approx(4 / counts.sum())  # N1 / N
    # List cut after 4: unlisted = counts of 2 (all three) and 1 (all four); N2 = 3, N3 = 2.
    assert unseen_estimate(counts, 4) == pytest.approx((4 + 2 * 3 + 3 * 2) / counts.sum())
    # On Zipf(1.1) the estimate is close to the true probability mass outside the stored list.
    long_tail = LongTail(50_000)
    profile = PipelinePath(long_tail.reference()).baseline.features["city"]
    listed = np.array([int(name.split("-")[1]) for name in profile.known_categories])
    assert profile.unseen_estimate == pytest.approx(1 - long_tail.shares[listed].sum(), abs=0.01)


def test_other_known_and_unseen_mean_the_same_on_both_sides(tail) -> None:
    long_tail, path = tail
    profile = path.baseline.features["city"]
    assert len(profile.categories) == 20 and len(profile.known_categories) == 1_000  # bounded
    window = long_tail.frame(np.random.default_rng(11), 20_000)
    counts = path.aggregate(*split(window)).categorical_counts.astype(float)
    ref_shares, cur_shares = profile.counts / profile.counts.sum(), counts / counts.sum()
    # Beyond the top-k together ("other known" + "unseen", the pooled bin) the shares agree;
    # "other known" alone is ~2 points lower in windows than in the reference, because the
    # stored list favours categories the reference happened to over-count (Good-Turing's
    # point), which is why neither bin is tested on its own.
    assert cur_shares[-2:].sum() == pytest.approx(ref_shares[-2:].sum(), abs=0.01)
    # "unseen": the unlisted tail (in the reference too) plus never-seen values (Good-Turing).
    assert ref_shares[-1] < profile.unseen_estimate
    assert cur_shares[-1] == pytest.approx(profile.unseen_estimate, abs=0.01)


def test_old_baselines_without_the_estimate_still_load_and_score() -> None:
    long_tail = LongTail(5_000)
    document = PipelinePath(long_tail.reference()).baseline.to_dict()
    for profile in document["features"].values():
        profile.pop("unseen_estimate", None)
    old = Baseline.from_dict(document)
    assert old.features["city"].unseen_estimate is None
    path = PipelinePath(long_tail.reference())
    path.baseline, path.layout = old, Layout(old, path.sample_size)
    report = path.evaluate(path.aggregate(*split(long_tail.frame(np.random.default_rng(1), 1_000))))
    assert np.isfinite(_city(report.features).score)


# --- invariants of pooling -------------------------------------------------------------------


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(0, 2_000), min_size=3, max_size=30),
    st.lists(st.integers(0, 300), min_size=3, max_size=30),
    st.booleans(),
)
def test_pooling_keeps_totals_and_cochrans_rule(
    ref: list[int], cur: list[int], categorical: bool
) -> None:
    size = min(len(ref), len(cur))
    ref_counts, cur_counts = np.array(ref[:size], float), np.array(cur[:size], float)
    ref_counts[0] += 1
    cur_counts[-1] += 1
    unseen = size - 1 if categorical else None
    pooled = pool_table(ref_counts, cur_counts, unseen)
    assert pooled.ref.sum() == ref_counts.sum() and pooled.cur.sum() == cur_counts.sum()
    if pooled.ref.size >= 2:
        assert np.all(pooled.cur.sum() * pooled.ref / pooled.ref.sum() >= MIN_EXPECTED)
    data = FeatureData(
        "categorical", ref_counts, cur_counts, unseen_bin=unseen, expected_unseen=0.01
    )
    result = REGISTRY["chisquare"].score(data)
    assert result.p_value is None or 0.0 <= result.p_value <= 1.0
    assert 0.0 <= result.score <= 1.0 + 1e-12
    if categorical:
        assert result.novelty_p_value is None or 0.0 <= result.novelty_p_value <= 1.0
