"""Event time per partition: watermarks, idle partitions and reading in step.

The rule (docs/reliability.md has the picture):

* every partition of the predictions topic has a *stream time*, the highest event
  time read from it (any model), and each model version has its own highest event
  time per partition that carried it;
* a model's clock on a partition is its own highest time there; on a partition
  that never carried the model, or carried none of it for ``idle_timeout`` seconds
  of wall time while other traffic went on, it is the partition's stream time;
* a partition is **idle** when the consumer has read everything in it (position at
  the end offset) and nothing arrived for ``idle_timeout`` seconds of wall time;
  idle partitions do not hold a watermark back; a partition that has not delivered
  anything yet and is not idle holds it back (a backlog read from cold);
* the watermark of a model version is the minimum of its clocks over the assigned
  partitions that are not idle, minus the allowed lateness; when every partition is
  idle the stream has ended for now, and event time moves on from the highest clock
  at the rate of the wall clock, so the last windows close too;
* the watermark never goes back (with a consumer; in-process, where partitions are
  known only once seen, a newly seen partition may pull it back, and windows already
  closed stay closed).

A partition whose stream time leads the slowest active partition by more than
``max_lead`` is to be paused (the consumer pauses it), so windows fill from every
partition during catch-up and the number of open windows stays bounded.

Wall time comes from ``now`` (monotonic seconds), so tests can drive it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["PartitionClocks"]

_NEVER = -math.inf


class PartitionClocks:
    """Per-partition event-time clocks of one daemon's predictions partitions.

    Parameters
    ----------
    allowed_lateness
        Seconds of event time a window stays open behind the clocks.
    idle_timeout
        Wall-clock seconds without records (and nothing left to read) before a
        partition stops holding back watermarks.
    max_lead
        Event-time seconds a partition may run ahead of the slowest active one
        before it is paused.
    now
        Monotonic wall clock in seconds.
    """

    def __init__(
        self, allowed_lateness: float, idle_timeout: float = 30.0, max_lead: float = 600.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed_lateness = float(allowed_lateness)
        self.idle_timeout = float(idle_timeout)
        self.max_lead = float(max_lead)
        self.now = now
        # None: not told by a consumer (in-process use): every partition seen counts, none is idle.
        self.assigned: set[int] | None = None
        self.stream_time: dict[int, float] = {}
        self.last_record: dict[int, float] = {}  # wall time of the last records per partition
        self.caught_up: dict[int, bool] = {}
        self.model_time: dict[tuple[str, str], dict[int, float]] = {}
        self.model_seen: dict[tuple[str, str], dict[int, float]] = {}  # wall time per partition
        self._watermark: dict[tuple[str, str], float] = {}

    # -- what the consumer tells ----------------------------------------------------
    def assign(self, partitions: Iterable[int]) -> None:
        """The predictions partitions this daemon reads now (after a rebalance)."""
        self.assigned = set(partitions)
        began = self.now()
        for partition in self.assigned:
            # A newly assigned partition has to show it is idle before it stops holding back.
            self.last_record.setdefault(partition, began)

    def delivered(self, partition: int) -> None:
        """Records (valid or not) arrived from ``partition``."""
        self.last_record[partition] = self.now()

    def set_caught_up(self, partition: int, caught_up: bool) -> None:
        """Whether the consumer's position on ``partition`` is at its end offset."""
        self.caught_up[partition] = caught_up

    def observe(self, model: str, version: str, partitions: np.ndarray, event_times: np.ndarray) -> None:
        """Event times of a batch of ``model`` ``version`` from the given partitions."""
        if len(event_times) == 0:
            return
        wall = self.now()
        times = self.model_time.setdefault((model, version), {})
        seen = self.model_seen.setdefault((model, version), {})
        for partition in np.unique(partitions).tolist():
            latest = float(event_times[partitions == partition].max())
            times[partition] = max(times.get(partition, _NEVER), latest)
            seen[partition] = wall
            self.stream_time[partition] = max(self.stream_time.get(partition, _NEVER), latest)
            self.last_record[partition] = wall

    # -- what the windows ask ---------------------------------------------------------
    def partitions(self) -> set[int]:
        return set(self.stream_time) | set(self.last_record) if self.assigned is None else self.assigned

    def idle(self, partition: int) -> bool:
        if self.assigned is None:
            return False
        quiet = self.now() - self.last_record.get(partition, self.now()) >= self.idle_timeout
        return quiet and self.caught_up.get(partition, False)

    def clock(self, model: str, version: str, partition: int) -> float:
        """The model version's event-time clock on ``partition`` (-inf: nothing read yet)."""
        own = self.model_time.get((model, version), {}).get(partition)
        stream = self.stream_time.get(partition, _NEVER)
        if own is None:
            return stream
        seen = self.model_seen[(model, version)][partition]
        if self.now() - seen >= self.idle_timeout:
            return max(own, stream)  # other traffic went on without this model
        return own

    def watermark(self, model: str, version: str) -> float:
        """Event time up to which windows of ``model`` ``version`` are complete."""
        key = (model, version)
        partitions = self.partitions()
        active = [p for p in partitions if not self.idle(p)]
        if active:
            candidate = min(self.clock(model, version, p) for p in active) - self.allowed_lateness
        else:
            clocks = [c for p in partitions if (c := self.clock(model, version, p)) > _NEVER]
            if not clocks:
                return self._watermark.get(key, _NEVER)
            quiet = self.now() - max((self.last_record.get(p, _NEVER) for p in partitions), default=_NEVER)
            candidate = max(clocks) + max(0.0, quiet) - self.allowed_lateness
        if self.assigned is None:
            return candidate  # in-process: partitions appear as they are seen, so it may go back
        mark = max(self._watermark.get(key, _NEVER), candidate)
        if mark > _NEVER:
            self._watermark[key] = mark
        return mark

    def to_pause(self) -> set[int]:
        """Partitions running more than ``max_lead`` ahead of the slowest active one.

        A partition that has delivered nothing yet counts as the slowest unless the
        consumer knows it is read to its end (empty): its backlog is fetched before
        the others run further ahead.
        """
        if self.assigned is None:
            return set()
        times = []
        for p in self.assigned:
            if self.idle(p):
                continue
            if p in self.stream_time:
                times.append(self.stream_time[p])
            elif not self.caught_up.get(p, False):
                times.append(_NEVER)
        if len(times) < 2:
            return set()
        slowest = min(times)
        return {p for p in self.assigned if self.stream_time.get(p, _NEVER) > slowest + self.max_lead}

    def lead(self) -> float:
        """Event-time spread between the fastest and the slowest active partition."""
        times = [self.stream_time[p] for p in self.partitions() if p in self.stream_time and not self.idle(p)]
        return max(times) - min(times) if len(times) > 1 else 0.0

    # -- checkpoints ------------------------------------------------------------------
    def to_state(self) -> dict[str, object]:
        return {
            "stream_time": [[p, t] for p, t in self.stream_time.items()],
            "model_time": [[m, v, [[p, t] for p, t in times.items()]] for (m, v), times in self.model_time.items()],
            "watermark": [[m, v, t] for (m, v), t in self._watermark.items()],
        }

    def restore(self, state: dict[str, object], max_event_time: float = math.inf) -> int:
        """Load clocks saved by :meth:`to_state`; returns how many poisoned ones were dropped.

        A clock above ``max_event_time`` (wall time plus ``limits.max_future_seconds``)
        came from an event with a wrong clock, before such events were refused: it is
        dropped, so that it cannot make every later event late.
        """
        wall = self.now()
        dropped = 0

        def keep(t: float) -> bool:
            nonlocal dropped
            if t > max_event_time:
                dropped += 1
                return False
            return True

        self.stream_time = {int(p): float(t) for p, t in state.get("stream_time", []) if keep(float(t))}  # type: ignore[union-attr]
        self.model_time, self.model_seen = {}, {}
        for m, v, times in state.get("model_time", []):  # type: ignore[union-attr]
            kept = {int(p): float(t) for p, t in times if keep(float(t))}
            self.model_time[(m, v)] = kept
            self.model_seen[(m, v)] = dict.fromkeys(kept, wall)
        self._watermark = {(m, v): float(t) for m, v, t in state.get("watermark", []) if keep(float(t) + self.allowed_lateness)}  # type: ignore[union-attr]
        return dropped

    def restore_legacy(self, partition_max: list, max_event_time: float = math.inf) -> int:  # type: ignore[type-arg]
        """Load the per-partition maxima of driftd 0.1 checkpoints (``windows.partition_max``)."""
        state = {"model_time": partition_max, "stream_time": []}
        dropped = self.restore(state, max_event_time)
        for times in self.model_time.values():
            for p, t in times.items():
                self.stream_time[p] = max(self.stream_time.get(p, _NEVER), t)
        return dropped
