"""Edge cases of issue 19: tiny samples, detector settings, speed, and non-finite values.

Each case used to crash, flag from fewer than 10 values, or hide data: the
vectorised Wasserstein path skipped the 10-value rule (5 values each were flagged
with p 7e-07; one value each raised IndexError), ADWIN accepted settings it then
crashed on, Page-Hinkley's ``update_many`` was 7x slower than a loop on a stream
with dense alarms, and ±inf values disappeared without a count.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats

from detectors import decide
from detectors.base import FeatureData
from detectors.sequential import ADWIN, PageHinkley
from detectors.wasserstein import wasserstein_many
from monitor.compare import run_comparison
from tests.detectors.detectors_pipeline import PipelinePath
from tests.detectors.longtail import LongTail, split


@pytest.fixture(scope="module")
def tail() -> tuple[LongTail, PipelinePath]:
    long_tail = LongTail(5_000)
    return long_tail, PipelinePath(long_tail.reference())


# --- edge cases ----------------------------------------------------------------------------


def _numeric(values: int, seed: int) -> FeatureData:
    rng = np.random.default_rng(seed)
    return FeatureData(
        "numeric",
        np.ones(2),
        np.ones(2),
        np.sort(rng.normal(size=values)),
        rng.normal(3, 1, values),
        1.0,
    )


@pytest.mark.parametrize("values", [1, 5, 9])
def test_wasserstein_many_keeps_the_ten_value_rule(values: int) -> None:
    scores = wasserstein_many([_numeric(values, 0), _numeric(values, 1)])
    assert all(np.isnan(s.score) and s.p_value is None for s in scores)
    results = [s.result("wasserstein", f"f{i}", 0.1) for i, s in enumerate(scores)]
    assert not any(r.drifted for r in decide(results))
    ten = wasserstein_many([_numeric(10, 0), _numeric(10, 1)])
    assert all(np.isfinite(s.score) for s in ten)


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"grace_period": 0}, "grace_period"),
        ({"max_buckets": 1}, "max_buckets"),
        ({"clock": 0}, "clock"),
        ({"min_window_length": 0}, "min_window_length"),
    ],
)
def test_adwin_rejects_settings_it_cannot_run(settings: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"{key} must be an integer >= "):
        ADWIN(**settings)


def test_adwin_smallest_allowed_settings_run_without_errors() -> None:
    rng = np.random.default_rng(0)
    streams = [
        rng.normal(size=2_000),
        np.r_[np.zeros(300), np.ones(300)],
        np.r_[5.0, np.zeros(200)],
        rng.integers(0, 2, 2_000) * 0.1,
    ]
    for stream in streams:
        detector = ADWIN(clock=1, grace_period=1, min_window_length=1, max_buckets=2)
        looped = [i for i, x in enumerate(stream) if detector.update(x).drift_detected]
        assert (
            ADWIN(clock=1, grace_period=1, min_window_length=1, max_buckets=2)
            .update_many(stream)
            .tolist()
            == looped
        )


def test_page_hinkley_update_many_matches_the_loop_and_is_not_slower() -> None:
    stream = np.random.default_rng(0).lognormal(
        sigma=2.0, size=200_000
    )  # an alarm every ~36 values
    values = stream.tolist()

    def loop() -> list[int]:
        detector = PageHinkley()
        return [i for i, x in enumerate(values) if detector.update(x).drift_detected]

    def many() -> list[int]:
        return PageHinkley().update_many(stream).tolist()

    assert many() == loop() and len(loop()) > 3_000
    timings = {}
    for name, run in (("loop", loop), ("many", many)):
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    print(
        f"\nPage-Hinkley, {len(loop())} alarms: loop {timings['loop']:.3f} s, update_many {timings['many']:.3f} s"
    )
    assert timings["many"] <= timings["loop"]
    sparse = np.random.default_rng(1).lognormal(sigma=1.0, size=100_000)
    detector = PageHinkley()
    assert PageHinkley().update_many(sparse).tolist() == [
        i for i, x in enumerate(sparse.tolist()) if detector.update(x).drift_detected
    ]


def test_infinite_values_are_counted_not_hidden(tail) -> None:
    long_tail, path = tail
    window = long_tail.frame(np.random.default_rng(2), 1_000)
    window.loc[:99, "x0"] = np.inf
    window.loc[100:109, "x0"] = -np.inf
    aggregate = path.aggregate(*split(window))
    assert aggregate.numeric_nonfinite.tolist() == [110, 0]
    assert aggregate.numeric_missing.tolist() == [0, 0]
    assert aggregate.numeric_counts[: len(path.baseline.features["x0"].counts)].sum() == 890
    merged = aggregate.merge(path.aggregate(*split(window)), path.sample_size)
    assert merged.numeric_nonfinite.tolist() == [220, 0]
    state = aggregate.to_state()
    assert type(aggregate).from_state(state).numeric_nonfinite.tolist() == [110, 0]
    state.pop("numeric_nonfinite")  # a checkpoint written before the count existed
    assert type(aggregate).from_state(state).numeric_nonfinite.tolist() == [0, 0]
    report = path.evaluate(aggregate)
    assert report.nonfinite_ratio["x0"] == pytest.approx(0.11) and report.missing_ratio["x0"] == 0.0
    comparison = run_comparison(long_tail.reference(), window, multivariate="none", methods=["ks"])
    row = next(r for r in comparison.rows if r.result.feature == "x0")
    assert (row.nonfinite_reference, row.nonfinite_current, row.missing_current) == (0, 110, 0.0)
    finite = window["x0"].to_numpy()
    expected = stats.ks_2samp(long_tail.reference()["x0"], finite[np.isfinite(finite)])
    assert row.result.score == pytest.approx(
        expected.statistic, rel=1e-9
    )  # KS of the finite values
