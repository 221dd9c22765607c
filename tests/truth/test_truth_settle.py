"""Sequential alarms depend on the events only, not on how polls interleave them.

The same predictions and labels, delivered in different batch sizes and with labels
shuffled differently (what different ``max_poll_records`` or partition interleavings
do), give the same alarms at the same event times once the error streams settle in
event-time order (``labels.settle_seconds``). Fed in join order they did not.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.truth.test_truth_join import _labels, _predictions, _starts, _stream, _truth


def _alarms(batch: int, seed: int, settle: float) -> list[tuple]:
    truth, _ = _truth(settle_seconds=settle)
    ids, times, predicted, scores, labels = _stream(3, 8000, drift_from=4000)
    rng = np.random.default_rng(seed)
    truth.add_predictions(_predictions(ids, times, predicted, scores), _starts(times))
    # Labels arrive within 300 s of their prediction, in an order that depends on the seed.
    arrival = times + rng.uniform(0, 300, len(times))
    order = np.argsort(arrival, kind="stable")
    for lo in range(0, len(order), batch):
        rows = order[lo:lo + batch]
        truth.add_labels(_labels([ids[i] for i in rows], labels[rows].tolist(), arrival[rows]))
    # The end of the stream: a label far later moves the labels' clock past the settle time.
    truth.add_labels(_labels(["nobody"], [1], np.array([arrival.max() + 10 * settle + 1])))
    return sorted((a.event_time, a.detector, a.errors_seen) for a in truth.alarms())


def test_the_same_events_give_the_same_alarms_whatever_the_batches() -> None:
    runs = [_alarms(batch, seed, settle=600) for batch, seed in ((100, 1), (5000, 2), (777, 3))]
    assert runs[0], "the flip must raise alarms"
    assert {a[1] for a in runs[0]} >= {"adwin", "page_hinkley"}
    assert runs[0] == runs[1] == runs[2]


def test_fed_in_join_order_they_differ() -> None:
    """Why the settling exists: without it the interleaving changes the alarms."""
    runs = [_alarms(batch, seed, settle=0) for batch, seed in ((100, 1), (5000, 2))]
    assert runs[0] != runs[1]


def test_a_label_later_than_the_settle_time_is_left_out_and_counted() -> None:
    truth, registry = _truth(settle_seconds=60)
    ids, times, predicted, scores, labels = _stream(5, 400)
    truth.add_predictions(_predictions(ids, times, predicted, scores), _starts(times))
    truth.add_labels(_labels(ids[200:], labels[200:].tolist(), times[200:] + 5))
    truth.add_labels(_labels(["nobody"], [1], np.array([times.max() + 1000])))  # settles past every label
    truth.add_labels(_labels(ids[:200], labels[:200].tolist(), times[:200] + 5))  # older, too late now
    excluded = registry.get_sample_value("driftd_sequential_excluded_total", {"model": "m"})
    assert excluded == pytest.approx(200)
    seen = {key: entry[0] for key, entry in truth._streams.detectors.items()}
    assert sum(seen.values()) == 200  # only the settled, in-order errors were fed
