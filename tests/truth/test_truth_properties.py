"""Invariants of the ground-truth aggregates (hypothesis): merging is the same as
seeing all events at once, state round trips are identities, intervals hold."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from detectors.calibration import ScoreHistogram
from detectors.cbpe import CalibrationMap, PredictionHistogram
from detectors.performance import BinaryCounts, wilson

scores = arrays(np.float64, st.integers(0, 200), elements=st.floats(0, 1))


def _split(values: np.ndarray, cut: int) -> tuple[np.ndarray, np.ndarray]:
    cut = min(cut, len(values))
    return values[:cut], values[cut:]


@settings(max_examples=40, deadline=None)
@given(scores, st.integers(0, 200), st.integers(0, 2**32 - 1))
def test_score_histogram_merge_equals_whole_and_round_trips(values, cut, seed):
    outcomes = np.random.default_rng(seed).random(len(values)) < 0.5
    whole = ScoreHistogram()
    whole.add(values, outcomes)
    first, second = ScoreHistogram(), ScoreHistogram()
    (a, b), (oa, ob) = _split(values, cut), _split(outcomes, cut)
    first.add(a, oa)
    second.add(b, ob)
    merged = ScoreHistogram.from_state(first.merge(second).to_state())
    assert np.array_equal(merged.positives, whole.positives)
    assert np.array_equal(merged.negatives, whole.negatives)
    assert np.allclose(merged.score_sum, whole.score_sum, rtol=1e-12, atol=1e-12)
    assert np.isclose(merged.brier_sum, whole.brier_sum, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(scores, st.integers(0, 2**32 - 1))
def test_prediction_histogram_and_counts_round_trip(values, seed):
    rng = np.random.default_rng(seed)
    positive = rng.random(len(values)) < 0.5
    hist = PredictionHistogram()
    hist.add(values, positive)
    again = PredictionHistogram.from_state(hist.to_state())
    assert np.array_equal(again.predicted_positive, hist.predicted_positive)
    assert again.n == len(values)
    counts = BinaryCounts()
    counts.add(rng.random(len(values)) < 0.3, positive, values)
    assert BinaryCounts.from_state(counts.to_state()) == counts
    assert counts.merge(BinaryCounts()) == counts


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=st.floats(0, 1)), st.integers(0, 2**32 - 1))
def test_calibration_map_is_monotone_and_serialises(values, seed):
    reference = ScoreHistogram()
    reference.add(values, np.random.default_rng(seed).random(len(values)) < values)
    cmap = CalibrationMap.fit(reference)
    assert np.all(np.diff(cmap.values) >= -1e-12)
    assert np.all((cmap.values >= 0) & (cmap.values <= 1))
    assert np.array_equal(CalibrationMap.from_dict(cmap.to_dict()).values, cmap.values)


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_wilson_interval_contains_the_proportion(successes, n):
    successes = min(successes, n)
    estimate = wilson(successes, n)
    assert 0.0 <= estimate.lower <= estimate.value + 1e-12
    assert estimate.value - 1e-12 <= estimate.upper <= 1.0
