"""Sampling keys, the policy, the budget, the recent-rows cache and per-window |SHAP| sums."""

from __future__ import annotations

import numpy as np
import pytest
from tests.explainers.explain_models import inputs, make_batch
from scipy import stats

from explainers.recent import RecentRows
from explainers.sampling import (
    BASE_RATE,
    DRIFTED_WINDOW,
    NEAR_THRESHOLD,
    WRONG,
    SamplingPolicy,
    TokenBucket,
    id_hashes,
    most_important,
    sampling_keys,
)
from explainers.rows import group_sums
from explainers.window_attribution import WindowAttributions
from monitor.results import WindowKey

_MASK = (1 << 64) - 1


def _reference_hash(text: str) -> int:
    """FNV-1a over code points, then splitmix64's finaliser, in plain Python."""
    h = 0xCBF29CE484222325
    for char in text:
        h = ((h ^ ord(char)) * 0x100000001B3) & _MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _MASK
    h ^= h >> 31
    return h


def test_hash_matches_the_scalar_reference_and_ignores_batch_composition() -> None:
    ids = ["a", "pred-000042", "ümlaut-Ω-😀", "x" * 128, "7f9c2ba4-e88f-4a2e-9d4b-1c2a3b4c5d6e"]
    expected = [_reference_hash(i) for i in ids]
    assert id_hashes(ids).tolist() == expected
    # Alone or next to a longer id (numpy pads), an id hashes the same.
    assert id_hashes(["a"]).tolist() == [expected[0]]
    assert id_hashes(["a", "x" * 300])[0] == expected[0]


def test_hash_of_same_length_ids_and_odd_code_points_matches_the_reference() -> None:
    # Ids of one length take a faster path than mixed lengths; both follow the rule,
    # including astral code points, lone surrogates and an id holding NUL (skipped).
    rng = np.random.default_rng(3)
    for length in (1, 7, 36):
        ids = ["".join(chr(int(c)) for c in rng.choice([48, 97, 0xE9, 0x3A9, 0x1F600], length)) for _ in range(50)]
        assert id_hashes(ids).tolist() == [_reference_hash(i) for i in ids]
    odd = ["\ud800ab", "a\x00b", "ab", "\U0010ffff\U0010ffff\U0010ffff"]
    assert id_hashes(odd).tolist() == [_reference_hash(i.replace("\x00", "")) for i in odd]
    assert id_hashes(odd[1:2]).tolist() == [_reference_hash("ab")]


def test_sampling_keys_are_uniform() -> None:
    keys = sampling_keys(id_hashes([f"pred-{i}" for i in range(50_000)]))
    assert keys.min() >= 0 and keys.max() < 1
    # Kolmogorov-Smirnov against U(0,1); sequential ids must not cluster.
    assert stats.kstest(keys, "uniform").pvalue > 0.01
    share = (keys < 0.01).mean()
    assert abs(share - 0.01) < 4 * np.sqrt(0.01 * 0.99 / len(keys))


def test_replays_pick_the_same_rows() -> None:
    policy = SamplingPolicy(base_rate=0.05, drifted_window_rate=0.2, near_threshold_band=0.0)
    ids = [f"p{i}" for i in range(5000)]
    first = policy.reasons(sampling_keys(id_hashes(ids)), None, False)
    # The same predictions arriving in other batches, in another order.
    shuffled = np.random.default_rng(0).permutation(5000)
    halves = [shuffled[:1700], shuffled[1700:]]
    again = np.zeros(5000, dtype=np.int8)
    for part in halves:
        again[part] = policy.reasons(sampling_keys(id_hashes([ids[i] for i in part])), None, False)
    np.testing.assert_array_equal(first, again)
    assert 150 < np.count_nonzero(first) < 350


def test_reason_priority_and_rates() -> None:
    policy = SamplingPolicy(base_rate=0.1, drifted_window_rate=0.3, near_threshold_band=0.05, decision_threshold=0.7)
    keys = np.array([0.05, 0.2, 0.2, 0.9, 0.9, 0.05])
    scores = np.array([0.1, 0.1, 0.1, 0.74, 0.5, 0.66])
    assert policy.reasons(keys, scores, drifted=True).tolist() == [BASE_RATE, DRIFTED_WINDOW, DRIFTED_WINDOW, NEAR_THRESHOLD, 0, NEAR_THRESHOLD]
    assert policy.reasons(keys, scores, drifted=False).tolist() == [BASE_RATE, 0, 0, NEAR_THRESHOLD, 0, NEAR_THRESHOLD]
    assert policy.reasons(keys, None, drifted=False).tolist() == [BASE_RATE, 0, 0, 0, 0, BASE_RATE]
    # NaN scores (events without scores) are never "near".
    assert policy.reasons(np.array([0.9]), np.array([np.nan]), False).tolist() == [0]


def test_cuts_keep_the_most_important_rows() -> None:
    codes = np.array([BASE_RATE, 0, WRONG, NEAR_THRESHOLD, BASE_RATE, DRIFTED_WINDOW], dtype=np.int8)
    keys = np.array([0.3, 0.0, 0.9, 0.5, 0.1, 0.2])
    # Importance order: 2 (wrong), 3 (near), 5 (drifted), 4 (base, key 0.1), 0 (base, key 0.3).
    for k, expected in [(0, []), (1, [2]), (2, [2, 3]), (4, [2, 3, 4, 5]), (5, [0, 2, 3, 4, 5]), (9, [0, 2, 3, 4, 5])]:
        assert most_important(codes, keys, k).tolist() == expected
    # Against a full sort on a large random case.
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 10_000).astype(np.int8)
    keys = rng.random(10_000)
    picked = np.flatnonzero(codes)
    ranked = picked[np.lexsort((keys[picked], -codes[picked].astype(int)))]
    np.testing.assert_array_equal(most_important(codes, keys, 1234), np.sort(ranked[:1234]))


def test_token_bucket_refills_at_its_rate_and_never_exceeds_its_burst() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=20, clock=lambda: now[0])
    assert bucket.take(100) == 20
    assert bucket.take(5) == 0
    now[0] += 0.25
    assert bucket.take(100) == 5
    now[0] += 3600
    assert bucket.take(100) == 20  # capped at one second's worth
    slow = TokenBucket(rate=0.5, clock=lambda: now[0])
    assert slow.take(3) == 1  # burst is at least one


def test_recent_rows_are_bounded_and_found_by_id() -> None:
    recent = RecentRows(capacity=100)
    frames = [inputs(60, seed) for seed in range(4)]
    entries = []
    for i, frame in enumerate(frames):
        batch = make_batch(frame, "m", prefix=f"b{i}-", scores=np.linspace(0, 1, 60))
        entries.append(recent.add(batch, np.full(60, 60.0 * i), id_hashes(batch.prediction_ids)))
    # Whole batches are kept: at most capacity rows plus one batch.
    assert 100 <= len(recent) < 160
    wanted = ["b0-1", "b3-10", "b3-59", "b2-0", "nope"]
    groups, already, found = recent.find("m", wanted, id_hashes(wanted))
    assert found == 3 and already == 0  # batch 0 was evicted, "nope" never seen
    by_id = {pid: (g, row) for g in groups for row, pid in enumerate(g[0].prediction_ids)}
    assert set(by_id) == {"b3-10", "b3-59", "b2-0"}
    (batch, window_starts, entry, rows), row = by_id["b3-10"]
    np.testing.assert_array_equal(batch.numeric[row], frames[3].iloc[10].to_numpy())
    assert batch.scores[row] == pytest.approx(10 / 59) and window_starts[row] == 180.0
    assert entry is entries[3] and rows[row] == 10
    RecentRows.mark_explained(entries[3], np.array([10]))
    groups, already, found = recent.find("m", wanted, id_hashes(wanted))
    assert found == 3 and already == 1
    assert sorted(pid for g in groups for pid in g[0].prediction_ids) == ["b2-0", "b3-59"]


def test_window_sums_are_bounded_and_report_changes() -> None:
    sums = WindowAttributions(max_windows=3)

    def add(segments: list[str], window_starts: np.ndarray, values: np.ndarray) -> None:
        # As the worker sums a task's rows per window and the collector adds the sums.
        for (segment, start), (total, count) in group_sums(segments, window_starts, np.abs(values)).items():
            sums.add_sums("m", "v", segment, start, ["a", "b"], total, count)

    values = np.array([[1.0, -1.0], [-3.0, 1.0]])
    for start in (0.0, 60.0, 120.0, 180.0):
        add(["", "eu"], np.array([start, start]), values)
    assert sums.mean(WindowKey("m", "v", ""), 0.0) is None  # only the 3 newest windows are kept
    assert sums.mean(WindowKey("m", "v", "eu"), 180.0) == ({"a": 3.0, "b": 1.0}, 1)
    add([""], np.array([180.0]), np.array([[3.0, 3.0]]))
    assert sums.mean(WindowKey("m", "v", ""), 180.0) == ({"a": 2.0, "b": 2.0}, 2)
    changed = sums.take_changed()
    assert (WindowKey("m", "v", ""), 180.0) in changed and len(changed) <= 3
    assert sums.take_changed() == []
