"""The event-time rule of ``monitor.clock`` with a wall clock the test drives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.clock import PartitionClocks


class Wall:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def wall() -> Wall:
    return Wall()


def clocks_on(wall: Wall, partitions=(0, 1, 2), **kwargs) -> PartitionClocks:
    clocks = PartitionClocks(allowed_lateness=10, idle_timeout=30, now=wall, **kwargs)
    clocks.assign(partitions)
    return clocks


def see(clocks: PartitionClocks, partition: int, *times: float, model: str = "m") -> None:
    clocks.observe(model, "v1", np.full(len(times), partition), np.array(times, dtype=float))


def test_a_partition_that_has_not_delivered_holds_the_watermark(wall: Wall) -> None:
    clocks = clocks_on(wall)
    see(clocks, 0, 500)
    see(clocks, 1, 900)
    assert clocks.watermark("m", "v1") == -math.inf  # partition 2: a backlog not read yet
    see(clocks, 2, 300)
    assert clocks.watermark("m", "v1") == 290  # the slowest partition, minus the lateness


def test_behind_in_event_time_is_not_idle_only_quiet_and_read_to_the_end_is(wall: Wall) -> None:
    clocks = clocks_on(wall)
    for p, t in ((0, 5000), (1, 5000), (2, 100)):
        see(clocks, p, t)
    wall.t += 3600
    assert clocks.watermark("m", "v1") == 90  # far behind and quiet, but not caught up
    clocks.set_caught_up(2, True)
    assert clocks.watermark("m", "v1") == 4990  # read to its end and quiet: left out
    see(clocks, 2, 150)  # it speaks again: held back again, but the watermark never goes back
    assert clocks.watermark("m", "v1") == 4990


def test_idle_needs_the_timeout(wall: Wall) -> None:
    clocks = clocks_on(wall, partitions=(0, 1))
    see(clocks, 0, 800)
    see(clocks, 1, 200)
    clocks.set_caught_up(1, True)
    wall.t += 29
    assert clocks.watermark("m", "v1") == 190
    wall.t += 1
    assert clocks.watermark("m", "v1") == 790


def test_when_every_partition_is_idle_time_moves_on_at_the_wall_clock_rate(wall: Wall) -> None:
    clocks = clocks_on(wall, partitions=(0, 1))
    see(clocks, 0, 800)
    see(clocks, 1, 700)
    for p in (0, 1):
        clocks.set_caught_up(p, True)
    wall.t += 30
    assert clocks.watermark("m", "v1") == 800 + 30 - 10  # from the highest clock, no jump to the wall clock
    wall.t += 60
    assert clocks.watermark("m", "v1") == 800 + 90 - 10


def test_a_partition_that_never_carried_the_model_counts_with_its_stream_time(wall: Wall) -> None:
    clocks = clocks_on(wall, partitions=(0, 1))
    see(clocks, 0, 400, model="a")
    see(clocks, 1, 900, model="b")
    assert clocks.watermark("a", "v1") == 390
    assert clocks.watermark("b", "v1") == 390  # b waits for partition 0's stream time
    wall.t += 31  # a has not been seen on partition 1 and b not on 0: both move with the stream
    see(clocks, 0, 1000, model="a")
    assert clocks.watermark("b", "v1") == 890


def test_the_leading_partition_is_paused_and_resumed(wall: Wall) -> None:
    clocks = clocks_on(wall, max_lead=600)
    for p, t in ((0, 100), (1, 650), (2, 800)):
        see(clocks, p, t)
    assert clocks.to_pause() == {2}
    assert clocks.lead() == 700
    see(clocks, 0, 300)
    assert clocks.to_pause() == set()
    clocks.set_caught_up(0, True)
    wall.t += 30  # partition 0 idle: the lead is judged between 1 and 2 only (150 s)
    assert clocks.to_pause() == set()


def test_in_process_use_counts_the_partitions_seen(wall: Wall) -> None:
    clocks = PartitionClocks(allowed_lateness=0, now=wall)
    see(clocks, 0, 500)
    assert clocks.watermark("m", "v1") == 500
    see(clocks, 1, 200)
    assert clocks.watermark("m", "v1") == 200  # no consumer: a partition appears when seen
    assert clocks.to_pause() == set()


def test_a_poisoned_clock_in_a_checkpoint_is_dropped(wall: Wall) -> None:
    clocks = clocks_on(wall, partitions=(0, 1))
    see(clocks, 0, 1_000.0)
    see(clocks, 1, 1_000.0)
    see(clocks, 1, 40_000_000_000.0)  # year 3237: a wrong clock, before such events were refused
    state = clocks.to_state()
    restored = clocks_on(wall, partitions=(0, 1))
    assert restored.restore(state, max_event_time=2_000.0) >= 2
    assert restored.watermark("m", "v1") == -math.inf  # partition 1 must deliver again
    see(restored, 1, 1_100.0)
    assert restored.watermark("m", "v1") == 990


def test_a_legacy_checkpoint_with_a_poisoned_maximum_is_repaired(wall: Wall) -> None:
    """driftd 0.1 saved ``windows.partition_max`` per (model, version) and partition."""
    legacy = [["m", "v1", [[0, 1_000.0], [1, 40_000_000_000.0]]]]
    clocks = clocks_on(wall, partitions=(0, 1))
    assert clocks.restore_legacy(legacy, max_event_time=2_000.0) == 1
    assert clocks.stream_time == {0: 1_000.0}
    see(clocks, 1, 995.0)
    assert clocks.watermark("m", "v1") == 985


def test_partitions_wait_for_a_backlog_not_fetched_yet(wall: Wall) -> None:
    clocks = clocks_on(wall, max_lead=600)
    see(clocks, 0, 100)
    assert clocks.to_pause() == {0}  # 1 and 2 may hold a backlog: fetch them first
    clocks.set_caught_up(1, True)  # empty
    assert clocks.to_pause() == {0}
    see(clocks, 2, 50)
    assert clocks.to_pause() == set()
