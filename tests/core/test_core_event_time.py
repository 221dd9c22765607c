"""Event time on the real broker: a model spread over partitions loses nothing.

One stream (13 one-minute windows, a shift from the seventh) is laid on partitions in
different ways and consumed by one daemon; the first 12 windows must equal the same
stream read from one partition: event counts, scores and decisions, nothing late.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import orjson
import pytest

from tests.core import event_time_stack as stack
from tests.core.event_time_stack import EVENTS, N_WINDOWS, T0, WINDOW

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _partition(event: dict, n: int) -> int:
    return zlib.crc32(event["prediction_id"].encode()) % n


@pytest.fixture(scope="module")
def one_partition(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> stack.Run:
    root = tmp_path_factory.mktemp("reference")
    reference = stack.run(root, kafka_bootstrap, f"ref{root.name[-6:]}", 1, stack.keyed_by_model)
    # The reference itself is sound: every event counted, the shift flagged from the 7th window
    # (on.) The windows are small (about 750 events per segment): the odd chance flag before the
    # shift is the false-alarm budget's business, not this test's.
    assert sum(r.n_events for r in reference.windows.values()) == N_WINDOWS * WINDOW * stack.RATE
    shifted = [r for (_segment, start), r in reference.windows.items() if start >= T0 + 6 * WINDOW]
    assert len(shifted) == N_WINDOWS and all({"num_0", "num_1"} <= set(r.drifted_features) for r in shifted)
    return reference


@pytest.mark.parametrize(("partitions", "layout"), [
    (3, stack.unkeyed), (6, stack.unkeyed), (3, stack.keyed_by_prediction_id), (6, stack.keyed_by_prediction_id),
], ids=["3-unkeyed", "6-unkeyed", "3-by-id", "6-by-id"])
def test_a_backlog_over_partitions_equals_one_partition(one_partition: stack.Run, tmp_path: Path,
                                                        kafka_bootstrap: str, topic_prefix: str,
                                                        partitions: int, layout) -> None:
    got = stack.run(tmp_path, kafka_bootstrap, topic_prefix, partitions, layout)
    stack.assert_same_windows(got, one_partition)
    assert not [reason for reason, _ in got.dead_letters]


def test_a_partition_ten_minutes_behind_loses_nothing(one_partition: stack.Run, tmp_path: Path,
                                                      kafka_bootstrap: str, topic_prefix: str) -> None:
    """Live: partition 2's producer sends event time 600 s behind the other two."""
    behind = 600.0
    placed = [(_partition(e, 3), e) for e in EVENTS]

    def live(daemon) -> None:
        step = 30.0
        rounds = int((EVENTS[-1]["timestamp"] - T0 + behind) // step) + 1
        topic = daemon.settings.kafka.predictions_topic
        for k in range(rounds):
            now = T0 + k * step
            batch = [(p, e) for p, e in placed
                     if now - (behind if p == 2 else 0.0) <= e["timestamp"] < now + step - (behind if p == 2 else 0.0)]
            stack.produce(kafka_bootstrap, topic, stack.by_partition(lambda i, _e, b=batch: b[i][0]),
                          [e for _, e in batch])

    got = stack.run(tmp_path, kafka_bootstrap, topic_prefix, 3, stack.keyed_by_model, during=live, timeout=180)
    stack.assert_same_windows(got, one_partition)


def test_an_idle_partition_lets_windows_close_and_the_stream_end_closes_the_last(
        one_partition: stack.Run, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    """Partition 2 never gets an event; the stream stops: every window closes, the 13th too."""
    layout = stack.by_partition(lambda _i, e: _partition(e, 2))
    got = stack.run(tmp_path, kafka_bootstrap, topic_prefix, 3, layout,
                    expect_windows=2 * (N_WINDOWS + 1), until=T0 + (N_WINDOWS + 1) * WINDOW, timeout=150)
    stack.assert_same_windows(got, one_partition)
    last = [r for (_s, start), r in got.windows.items() if start == T0 + N_WINDOWS * WINDOW]
    assert sum(r.n_events for r in last) == WINDOW * stack.RATE  # the end of the stream closed it, whole


def test_one_event_from_a_wrong_clock_is_dead_lettered_and_changes_nothing(
        one_partition: stack.Run, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    import time

    future = dict(EVENTS[0], prediction_id="from-next-year", timestamp=time.time() + 365 * 86_400)

    def layout(producer, topic, events) -> None:
        producer.send(topic, orjson.dumps(future), partition=1)  # first: before any real event
        stack.keyed_by_prediction_id(producer, topic, events)

    got = stack.run(tmp_path, kafka_bootstrap, topic_prefix, 3, layout)
    stack.assert_same_windows(got, one_partition)
    assert got.invalid["bad_timestamp"] == 1
    assert [(reason, orjson.loads(value)["prediction_id"]) for reason, value in got.dead_letters] == [
        ("bad_timestamp", "from-next-year")]
