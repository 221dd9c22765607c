"""WindowTruth is mergeable: the windows two GroundTruth instances fill from two
parts of a stream, merged, equal the window one instance fills from all of it
(property test over tasks, splits and label orders), and state round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.baseline import build_baseline
from monitor.config import LabelSettings, ModelSettings
from monitor.results import WindowKey
from monitor.truth import GroundTruth
from monitor.truth.window import WindowTruth, label_update
from tests.truth.test_truth_join import _labels, _predictions

WINDOW = 300.0
START = 1_700_000_100.0
KEY = WindowKey("m", "v1", "")
CLASSES = ["a", "b", "c", "d"]


_BASELINES: dict = {}


def _baseline(task: str, rng: np.random.Generator | None = None):
    """One baseline per task (and per seed when ``rng`` is given): building is slow."""
    if rng is None:
        if task not in _BASELINES:
            _BASELINES[task] = _baseline(task, np.random.default_rng(0))
        return _BASELINES[task]
    n = 2000
    if task == "regression":
        y = rng.normal(size=n)
        frame = pd.DataFrame({"x": rng.normal(size=n), "y": y, "pred": y + rng.normal(0, 0.5, n)})
        return build_baseline(frame, "m", "v1", target="y", prediction="pred", task="regression")
    if task == "multiclass":
        y = rng.choice(CLASSES, n)
        frame = pd.DataFrame({"x": rng.normal(size=n), "y": y, "pred": rng.choice(CLASSES, n),
                              "score": rng.random(n)})
        return build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="multiclass")
    score = rng.beta(0.3, 0.3, n)
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": (rng.random(n) < score).astype(int),
                          "pred": (score >= 0.5).astype(int), "score": score})
    return build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="binary")


def _events(task: str, rng: np.random.Generator, n: int):
    scores = rng.beta(0.3, 0.3, n)
    if task == "regression":
        predictions = rng.normal(size=n)
        return predictions, None, (predictions + rng.normal(0, 1, n)).tolist()
    if task == "multiclass":
        return rng.choice(CLASSES, n).astype(object), scores, rng.choice(CLASSES, n).tolist()
    return (scores >= 0.5).astype(int).astype(str).astype(object), scores, (rng.random(n) < scores).astype(int).tolist()


def _fill(task, baseline, ids, times, predictions, scores, labels, label_order) -> WindowTruth:
    truth = GroundTruth(LabelSettings(), {"m": ModelSettings(name="m", task=task)}, lambda m, v: baseline, None, WINDOW)
    if len(ids):
        truth.add_predictions(_predictions(ids, times, predictions, scores), np.full(len(ids), START))
        truth.add_labels(_labels([ids[i] for i in label_order], [labels[i] for i in label_order], times[label_order]))
    return truth._find(KEY, START) or WindowTruth()  # noqa: SLF001 - the aggregate under test


def _matrix(window: WindowTruth) -> dict:
    counts = window.multiclass
    if counts is None:
        return {}
    return {(r, c): int(counts.matrix[i, j]) for i, r in enumerate(counts.classes)
            for j, c in enumerate(counts.classes) if counts.matrix[i, j]}


def _close(a, b, where: str) -> None:
    """Equal structure, equal ints and strings, floats equal up to summation order."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9, nan_ok=True), where
    else:
        assert a == b, where


def _assert_same(merged: WindowTruth, whole: WindowTruth, baseline) -> None:
    assert (merged.n_predictions, merged.n_labels) == (whole.n_predictions, whole.n_labels)
    assert merged.label_counts == whole.label_counts
    assert _matrix(merged) == _matrix(whole)
    for name in ("binary", "regression", "scores", "predictions"):
        a, b = getattr(merged, name), getattr(whole, name)
        assert (a is None) == (b is None), name
        if a is not None:
            _close(a.to_state(), b.to_state(), name)
    if whole.label_bins is not None:
        assert np.array_equal(merged.label_bins, whole.label_bins)
    if whole.n_labels:
        got = label_update(KEY, START, merged, baseline).performance
        want = label_update(KEY, START, whole, baseline).performance
        assert got.keys() == want.keys()
        for metric in want:
            # Multiclass macro metrics: a seeded bootstrap over the matrix cells, whose
            # draws depend on the class numbering; their values must still agree.
            bootstrapped = whole.multiclass is not None and metric != "accuracy"
            n = 1 if bootstrapped else 4
            assert tuple(got[metric])[:n] == pytest.approx(tuple(want[metric])[:n], rel=1e-9, abs=1e-9, nan_ok=True), metric


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["binary", "multiclass", "regression"]), st.integers(1, 300), st.floats(0, 1),
       st.integers(0, 2**32 - 1))
def test_merge_of_split_windows_equals_the_whole_window(task, n, share, seed):
    rng = np.random.default_rng(seed)
    baseline = _baseline(task)
    ids = [f"p{i}" for i in range(n)]
    times = START + np.sort(rng.uniform(0, WINDOW - 1, n))
    predictions, scores, labels = _events(task, rng, n)
    cut = int(round(share * n))
    order = rng.permutation(n)  # labels arrive shuffled
    whole = _fill(task, baseline, ids, times, predictions, scores, labels, order)
    parts = []
    for rows in (np.arange(cut), np.arange(cut, n)):
        # The part's labels arrive in the same relative order as in the whole stream.
        local_order = np.array([i - cut * (rows[0] == cut) for i in order if i in set(rows.tolist())], np.int64)
        parts.append(_fill(task, baseline, [ids[i] for i in rows], times[rows], predictions[rows],
                           None if scores is None else scores[rows], [labels[i] for i in rows], local_order))
    merged = parts[0].merge(parts[1])
    _assert_same(merged, whole, baseline)
    assert merged.merge(WindowTruth()).to_state() == merged.to_state()
    # State round trip is the identity.
    assert WindowTruth.from_state(merged.to_state()).to_state() == merged.to_state()


def test_merge_refuses_rank_counts_over_different_bins():
    rng = np.random.default_rng(1)
    first = _baseline("binary", rng)
    second = _baseline("binary", np.random.default_rng(2))
    ids = ["a", "b", "c"]
    times = START + np.array([1.0, 2.0, 3.0])
    preds, scores, labels = _events("binary", rng, 3)
    one = _fill("binary", first, ids, times, preds, scores, labels, np.arange(3))
    other = _fill("binary", second, ["d", "e", "f"], times, preds, scores, labels, np.arange(3))
    with pytest.raises(ValueError, match="different score bins"):
        one.merge(other)
