"""Window aggregates are mergeable, round-trip through state, and respect the watermark."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.baseline import build_baseline
from monitor.batch import PredictionBatch
from monitor.config import DriftSettings
from monitor.evaluate import evaluate_window
from monitor.events import category_text
from monitor.results import WindowKey
from monitor.clock import PartitionClocks
from monitor.windows import Layout, WindowAggregate, Windows, window_start

from tests.core.core_helpers import make_batch

KEY = WindowKey("credit", "v1", "")


def aggregate_of(layout: Layout, batch, rows) -> WindowAggregate:
    aggregate = layout.empty()
    aggregate.add(layout.bin_batch(batch), rows, layout.sample_size)
    return aggregate


def assert_same(a: WindowAggregate, b: WindowAggregate) -> None:
    assert a.n == b.n and a.start == b.start and a.end == b.end
    for name in WindowAggregate._ARRAYS:
        left, right = getattr(a, name), getattr(b, name)
        if name == "numeric_sum":
            np.testing.assert_allclose(left, right, rtol=1e-12, atol=1e-9)
        else:
            np.testing.assert_array_equal(left, right, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 1500), split=st.floats(0, 1), seed=st.integers(0, 10_000))
def test_merge_of_split_equals_whole(layout: Layout, n: int, split: float, seed: int) -> None:
    batch = make_batch(layout, n, seed)
    k = int(split * n)
    whole = aggregate_of(layout, batch, np.arange(n))
    left = aggregate_of(layout, batch, np.arange(k))
    right = aggregate_of(layout, batch, np.arange(k, n))
    assert_same(left.merge(right, layout.sample_size), whole)
    assert_same(right.merge(left, layout.sample_size), whole)
    # The statistics, not only the sums, are the same.
    drift = DriftSettings()
    one = evaluate_window(KEY, 0.0, 300.0, whole, layout, drift, None, 1)
    two = evaluate_window(KEY, 0.0, 300.0, left.merge(right, layout.sample_size), layout, drift, None, 1)
    np.testing.assert_equal(  # NaN scores (too little data) compare equal here
        [(r.feature, r.score, r.p_value, r.drifted) for r in one.features],
        [(r.feature, r.score, r.p_value, r.drifted) for r in two.features],
    )


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 400), min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_batching_does_not_change_the_aggregate(layout: Layout, sizes: list[int], seed: int) -> None:
    batch = make_batch(layout, sum(sizes), seed)
    whole = aggregate_of(layout, batch, np.arange(len(batch)))
    piecewise = layout.empty()
    binned = layout.bin_batch(batch)
    begin = 0
    for size in sizes:
        piecewise.add(binned, np.arange(begin, begin + size), layout.sample_size)
        begin += size
    assert_same(piecewise, whole)


def test_state_round_trip_is_identity(layout: Layout) -> None:
    aggregate = aggregate_of(layout, make_batch(layout, 3000, 1), np.arange(3000))
    assert_same(WindowAggregate.from_state(aggregate.to_state()), aggregate)


def test_sample_is_bounded_and_uniform(layout: Layout) -> None:
    aggregate = layout.empty()
    for i in range(20):
        batch = make_batch(layout, 5000, i, first_offset=i * 5000)
        aggregate.add(layout.bin_batch(batch), np.arange(5000), layout.sample_size)
    assert aggregate.n == 100_000
    assert len(aggregate.sample) == layout.sample_size
    # Rows come from all batches, not only the first or last ones.
    column = aggregate.sample[:, 0]
    assert abs(np.nanmean(column)) < 0.15


def test_counts_match_direct_binning(layout: Layout) -> None:
    batch = make_batch(layout, 4000, 7)
    aggregate = aggregate_of(layout, batch, np.arange(4000))
    for j, name in enumerate(layout.numeric_names):
        edges = layout.baseline.features[name].edges
        values = batch.numeric[:, j]
        expected = np.bincount(np.searchsorted(edges, values[~np.isnan(values)], side="right"), minlength=len(edges) + 1)
        lo, hi = layout.numeric_offsets[j], layout.numeric_offsets[j + 1]
        np.testing.assert_array_equal(aggregate.numeric_counts[lo:hi], expected)
        assert aggregate.numeric_missing[j] == np.isnan(values).sum()
    profile = layout.baseline.features[layout.categorical_names[0]]
    codes = profile.category_codes()
    column = batch.categorical[:, 0]
    expected = np.zeros(profile.n_bins, dtype=np.int64)
    for value in column:
        if value is not None:
            expected[codes.get(value, profile.unseen_bin)] += 1
    np.testing.assert_array_equal(aggregate.categorical_counts[: profile.n_bins], expected)


def test_watermark_closes_windows_and_counts_late_events(layout: Layout) -> None:
    windows = Windows(size=300, allowed_lateness=30)
    late, closed = windows.add(layout, make_batch(layout, 1000, 1, start=0, span=290))
    assert not late.any() and not closed and not windows.due()
    # Events up to 340 s: watermark 310 passes the end of window [0, 300).
    windows.add(layout, make_batch(layout, 100, 2, start=300, span=40))
    due = windows.due()
    assert [(key.segment, start) for key, start, _ in due] == [("", 0.0), ("region=eu", 0.0)]
    assert sum(agg.n for _, _, agg in due) == 1000
    late, _ = windows.add(layout, make_batch(layout, 10, 3, start=100, span=10))
    assert late.all()


def test_window_start_and_state_restore(layout: Layout) -> None:
    assert window_start(np.array([299.999, 300.0, 601.0]), 300).tolist() == [0.0, 300.0, 600.0]
    windows = Windows(size=300, allowed_lateness=30)
    windows.add(layout, make_batch(layout, 500, 1, start=0, span=600))
    restored = Windows(size=300, allowed_lateness=30)
    restored.restore(windows.to_state())
    assert restored.watermark("credit", "v1") == windows.watermark("credit", "v1")
    assert set(restored.open) == set(windows.open)
    for slot, aggregate in windows.open.items():
        assert_same(restored.open[slot], aggregate)


def test_watermark_follows_the_slowest_partition(layout: Layout) -> None:
    windows = Windows(size=300, allowed_lateness=0)
    fast = make_batch(layout, 200, 1, start=0, span=500)
    slow = make_batch(layout, 200, 2, start=0, span=250, first_offset=1 << 40)
    windows.add(layout, fast)
    windows.add(layout, slow)
    assert windows.watermark("credit", "v1") == slow.event_times.max()
    assert not windows.due()  # window [0, 300) still waits for partition 1


def test_open_windows_are_capped(layout: Layout) -> None:
    windows = Windows(size=10, allowed_lateness=1e6, max_open_per_key=3, clocks=PartitionClocks(1e6, max_lead=0))
    _, closed = windows.add(layout, make_batch(layout, 500, 1, start=0, span=100))
    per_key = {}
    for key, _start in windows.open:
        per_key[key] = per_key.get(key, 0) + 1
    assert max(per_key.values()) <= 3 and closed
    assert math.isfinite(windows.watermark("credit", "v1"))


def test_a_partition_far_behind_holds_the_watermark_until_it_is_idle(layout: Layout) -> None:
    wall = [0.0]
    clocks = PartitionClocks(0, idle_timeout=30, now=lambda: wall[0])
    clocks.assign([0, 1])
    windows = Windows(size=300, allowed_lateness=0, clocks=clocks)
    windows.add(layout, make_batch(layout, 200, 2, start=0, span=100, first_offset=1 << 40))
    windows.add(layout, make_batch(layout, 200, 1, start=0, span=2000))
    assert windows.watermark("credit", "v1") < 100  # behind in event time is not idle
    clocks.set_caught_up(1, True)
    wall[0] = 31.0
    assert windows.watermark("credit", "v1") > 1900  # read to its end and quiet: left out


def _reference_bins(layout: Layout, numeric: np.ndarray, categorical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bins the slow, obvious way: a binary search per value, a dict lookup per category."""
    num = np.full(numeric.shape, -1, dtype=np.int64)
    for j, edges in enumerate(layout.numeric_edges):
        for i, value in enumerate(numeric[:, j]):
            if math.isfinite(value):  # ±inf is counted on its own (numeric_nonfinite), never binned
                num[i, j] = np.searchsorted(edges, value, side="right") + layout.numeric_offsets[j]
    cat = np.full(categorical.shape, -1, dtype=np.int64)
    for j, name in enumerate(layout.categorical_names):
        profile = layout.baseline.features[name]
        codes = profile.category_codes()
        for i, value in enumerate(categorical[:, j]):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            text = value if isinstance(value, str) else category_text(value)
            cat[i, j] = codes.get(text, profile.unseen_bin) + layout.categorical_offsets[j]
    return num, cat


@pytest.mark.parametrize("n_bins", [10, 60])  # 60 bins: more edges than are binned by comparison
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400))
def test_binning_equals_a_search_per_value(n_bins: int, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({
        "smooth": rng.normal(size=3000),
        "discrete": rng.integers(0, 4, size=3000).astype(float),  # repeated edges
        "flags": rng.choice(np.array(["1", "true", "false", "a", "b"], dtype=object), size=3000),
    })
    layout = Layout(build_baseline(reference, "m", "v1", n_bins=n_bins, reference_rows=0), sample_size=50)
    edges = np.concatenate(layout.numeric_edges)
    pool = np.concatenate([edges, rng.normal(size=50), [np.nan, np.inf, -np.inf, 0.0, 3.0]])
    numeric = rng.choice(pool, size=(n, len(layout.numeric_names)))
    values = np.array(["1", "true", "a", "b", "zzz", None, np.nan, True, False, 1, 1.0, 2.5, 7], dtype=object)
    categorical = values[rng.integers(0, len(values), size=(n, len(layout.categorical_names)))]
    batch = PredictionBatch(
        model="m", version="v1", prediction_ids=[str(i) for i in range(n)], event_times=np.zeros(n), segments=[""] * n,
        numeric_names=layout.numeric_names, numeric=numeric, categorical_names=layout.categorical_names,
        categorical=categorical, predictions=np.full(n, np.nan), offsets=np.arange(n, dtype=np.int64),
    )
    binned = layout.bin_batch(batch)
    expected_numeric, expected_categorical = _reference_bins(layout, numeric, categorical)
    np.testing.assert_array_equal(binned.numeric_bins, expected_numeric)
    np.testing.assert_array_equal(binned.categorical_bins, expected_categorical)
