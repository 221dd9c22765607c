"""Property tests (hypothesis) for invariants every drift method must respect."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import REGISTRY
from detectors.base import FeatureData

COUNT_METHODS = ["psi", "jensenshannon", "hellinger", "chisquare"]

counts = st.lists(st.integers(0, 500), min_size=2, max_size=12)
samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=10, max_size=80)  # MIN_SAMPLE_SIZE


def _pair(draw_a: list[int], draw_b: list[int]) -> tuple[np.ndarray, np.ndarray]:
    size = min(len(draw_a), len(draw_b))
    a, b = np.array(draw_a[:size], float), np.array(draw_b[:size], float)
    a[0] += 1  # never an empty side
    b[-1] += 1
    return a, b


@settings(max_examples=60, deadline=None, derandomize=True)
@given(counts, counts)
def test_count_methods_are_symmetric_and_size_free(draw_a: list[int], draw_b: list[int]) -> None:
    a, b = _pair(draw_a, draw_b)
    for name in COUNT_METHODS:
        spec = REGISTRY[name]
        forward = spec.score(FeatureData("categorical", a, b)).score
        backward = spec.score(FeatureData("categorical", b, a)).score
        tripled = spec.score(FeatureData("categorical", 3 * a, 7 * b)).score
        assert np.isclose(forward, backward, rtol=1e-9, atol=1e-12), name
        # Effect sizes depend on the distributions, not on how many events each side saw.
        assert np.isclose(forward, tripled, rtol=1e-9, atol=1e-12), name
        low, high = spec.score_range
        assert low - 1e-12 <= forward <= high + 1e-12, name


@settings(max_examples=60, deadline=None, derandomize=True)
@given(counts)
def test_identical_distributions_score_zero(draw: list[int]) -> None:
    a, _ = _pair(draw, draw)
    for name in COUNT_METHODS:
        assert abs(REGISTRY[name].score(FeatureData("categorical", a, 2 * a)).score) < 1e-7, name


@settings(max_examples=60, deadline=None, derandomize=True)
@given(samples, samples, st.floats(0.01, 100), st.floats(-100, 100))
def test_sample_methods_are_invariant_to_units(ref: list[float], cur: list[float], scale: float, shift: float) -> None:
    """Changing units (x -> scale x + shift on both sides) changes neither score nor p-value.

    Values are rounded to 3 decimals first: distinct values then stay distinct (and ties
    stay ties) under the transform, as they do for real units; floats closer than the
    rounding error of the transform would merge and change the tie pattern.
    """
    ref_a, cur_a = np.round(np.array(ref), 3), np.round(np.array(cur), 3)
    if np.std(ref_a) < 1e-6:
        return
    for name in ("ks", "wasserstein"):
        spec = REGISTRY[name]
        plain = spec.score(FeatureData("numeric", np.ones(1), np.ones(1), ref_a, cur_a, float(np.std(ref_a, ddof=1))))
        moved = spec.score(FeatureData("numeric", np.ones(1), np.ones(1), scale * ref_a + shift, scale * cur_a + shift,
                                       float(np.std(scale * ref_a + shift, ddof=1))))
        assert np.isclose(plain.score, moved.score, rtol=1e-6, atol=1e-9), name
        assert np.isclose(plain.p_value, moved.p_value, rtol=1e-6, atol=1e-12), name
        assert 0.0 <= plain.p_value <= 1.0
