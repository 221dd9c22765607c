"""Reading in step: end offsets, caught-up partitions, and pausing the ones far ahead.

The consumer loop calls :meth:`Pacer.refresh_ends` and :meth:`Pacer.read_in_step`
after each iteration. The first asks the broker for end offsets (at most once a
second), exports the lag per partition and tells the clocks which predictions
partitions are read to their end (the idle rule of ``monitor.clock``); the second
pauses the predictions partitions the clocks find too far ahead in event time and
resumes the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from monitor.clock import PartitionClocks
from monitor.metrics import PipelineMetrics

__all__ = ["Pacer"]

log = logging.getLogger(__name__)

# End offsets (lag, caught-up partitions for the idle rule) are asked for at most this often.
_ENDS_INTERVAL = 1.0


class Pacer:
    """Lag, caught-up partitions and pause/resume for one Kafka consumer.

    Parameters
    ----------
    client
        The ``KafkaConsumer``.
    topic
        The predictions topic (only its partitions are paced).
    pipeline
        The pipeline whose event-time clocks (``pipeline.clocks``) decide.
    assigned
        Returns the partitions assigned now.
    positions
        Next offset to process per partition (what the loop has handed to the pipeline).
    """

    def __init__(self, client: Any, topic: str, pipeline: Any, metrics: PipelineMetrics,
                 assigned: Callable[[], set[Any]], positions: dict[Any, int]) -> None:
        self.client = client
        self.topic = topic
        self.pipeline = pipeline
        self.metrics = metrics
        self.assigned = assigned
        self.positions = positions
        self._last_ends = 0.0
        self._paused: set[Any] = set()

    @property
    def clocks(self) -> PartitionClocks:
        return self.pipeline.clocks  # replaced when the pipeline is reset

    @property
    def paused(self) -> set[Any]:
        return set(self._paused)

    def refresh_ends(self) -> None:
        """Lag per partition and, for the clocks, which predictions partitions are read to their end."""
        now = time.monotonic()
        if now - self._last_ends < _ENDS_INTERVAL:
            return
        assigned = list(self.assigned())
        if not assigned:
            return
        self._last_ends = now
        try:
            ends = self.client.end_offsets(assigned)
        except Exception:  # noqa: BLE001 - lag is best effort; partitions stay "not caught up"
            return
        clocks = self.clocks
        for tp in assigned:
            position = self.positions.get(tp)
            if position is None:
                try:
                    position = self.client.position(tp)
                except Exception:  # noqa: BLE001
                    continue
            lag = max(0, ends.get(tp, 0) - position)
            self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
            if tp.topic == self.topic:
                clocks.set_caught_up(tp.partition, lag == 0)

    def resume(self, partitions: list[Any]) -> None:
        """Resume ``partitions`` and fetch them again from our position.

        kafka-python 3.0 parks records fetched for a partition when it is paused and
        hands them back on resume only while no other partition's records are in line;
        otherwise the partition stays parked and is never fetched again (seen on the
        embedded broker: two of three partitions stalled for good). Dropping the parked
        records and seeking to the next offset we have not processed re-fetches them.
        """
        if not partitions:
            return
        self.client.resume(*partitions)
        fetcher = getattr(self.client, "_fetcher", None)
        for tp in partitions:
            if fetcher is not None:
                parked = getattr(fetcher, "_paused_partition_records", {}).pop(tp, None)
                if parked is not None:
                    parked.drain()
                getattr(fetcher, "_paused_completed_fetches", {}).pop(tp, None)
            position = self.positions.get(tp)
            if position is not None:
                self.client.seek(tp, position)

    def read_in_step(self) -> None:
        """Pause predictions partitions too far ahead in event time; resume the others."""
        clocks = self.clocks
        ahead = clocks.to_pause()
        wanted = {tp for tp in self.assigned() if tp.topic == self.topic and tp.partition in ahead}
        pause, resume = wanted - self._paused, self._paused - wanted
        if pause:
            self.client.pause(*pause)
            log.info("paused %s: more than %.0f s ahead in event time of the slowest partition",
                     ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(pause)), clocks.max_lead)
        if resume:
            self.resume([tp for tp in resume if tp in self.assigned()])
        self._paused = wanted
        self.metrics.partitions_paused.set(len(wanted))
        self.metrics.partitions_idle.set(sum(clocks.idle(p) for p in clocks.assigned or ()))
        self.metrics.event_time_lead.set(clocks.lead())
