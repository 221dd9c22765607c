"""Attribution drift statistics against scikit-learn's NDCG (the reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from detectors.attribution import attribution_drift, ndcg, relative_change


@pytest.mark.parametrize("seed", range(40))
def test_ndcg_equals_sklearn_including_ties_and_cutoffs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    gains = rng.exponential(size=n)
    # Rounded scores produce ties, which both implementations average over.
    scores = np.round(gains + rng.normal(scale=0.5, size=n), 1 if seed % 2 else 6)
    k = None if seed % 3 else int(rng.integers(1, n + 1))
    expected = ndcg_score(gains[None, :], scores[None, :], k=k)
    assert ndcg(gains, scores, k) == pytest.approx(expected, abs=1e-12)


def test_ndcg_edge_cases() -> None:
    assert ndcg(np.array([1.0, 0.5]), np.array([0.2, 0.1])) == 1.0
    assert np.isnan(ndcg(np.zeros(3), np.array([1.0, 2.0, 3.0])))
    assert np.isnan(ndcg(np.array([]), np.array([])))
    with pytest.raises(ValueError, match="one length"):
        ndcg(np.ones(2), np.ones(3))


def test_relative_change_floors_tiny_baselines() -> None:
    change = relative_change(np.array([1.0, 0.0]), np.array([0.5, 0.01]))
    assert change[0] == pytest.approx(-0.5)
    assert change[1] == pytest.approx(0.01 / 1e-3)  # floor: 1e-3 of the total importance


def test_attribution_drift_decision() -> None:
    reference = {"x1": 2.0, "x2": 0.7, "x3": 0.2, "x4": 0.05}
    same = {"x1": 1.9, "x2": 0.75, "x3": 0.18, "x4": 0.06}
    swapped = {"x1": 0.7, "x2": 2.0, "x3": 0.2, "x4": 0.05}
    quiet = attribution_drift(reference, same, 300, threshold=0.9)
    assert quiet.ndcg == pytest.approx(1.0) and not quiet.drifted
    loud = attribution_drift(reference, swapped, 300, threshold=0.9)
    assert loud.drifted and loud.ndcg < 0.9
    assert loud.relative_change["x2"] == pytest.approx(2.0 / 0.7 - 1)
    assert loud.mean_abs_shap == swapped
    # Too few explanations: reported, not decided.
    early = attribution_drift(reference, swapped, 5, threshold=0.9, min_explanations=20)
    assert early.ndcg == loud.ndcg and not early.drifted
    # A feature the baseline never saw counts as zero there (and vice versa).
    extra = attribution_drift({"x1": 1.0}, {"x1": 1.0, "new": 5.0}, 100)
    assert set(extra.relative_change) == {"x1", "new"} and extra.drifted
