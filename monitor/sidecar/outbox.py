"""A bounded buffer of encoded events and the thread that delivers it to Kafka.

The caller's side (:meth:`Outbox.offer`) takes a lock for a counter update and
appends to a deque: it never waits for Kafka. One background thread takes chunks
of up to ``batch_events`` records, hands them to a kafka-python producer (which
batches and compresses them per partition), and waits until every record of the
chunk is acknowledged or has failed. Only then does it count them:

* acknowledged records leave the buffer (``sent``);
* failed records go back to the *front* of the buffer (``errors``) and the thread
  backs off before trying again, so nothing accepted is lost while Kafka is gone.

``capacity`` (records) and ``capacity_bytes`` (encoded values) bound what is
accepted but not yet acknowledged (queued plus in flight), so memory stays bounded
through any outage whatever the event sizes. When either is reached, :meth:`offer`
refuses the newest record and counts it as ``dropped``.

Delivery is at least once: a record whose acknowledgement was lost is sent again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from kafka.errors import KafkaTimeoutError

__all__ = ["LATENCY_BUCKETS", "DeliveryStats", "Outbox", "Record"]

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the chunk send-latency histogram; +Inf is implied.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Record = tuple[str, bytes | None, bytes]
"""``(topic, key, value)`` as handed to ``KafkaProducer.send``."""


class DeliveryStats(NamedTuple):
    """A consistent snapshot of an :class:`Outbox`'s counters."""

    accepted: int
    dropped: int
    sent: int
    errors: int
    buffered: int
    capacity: int
    buffered_bytes: int
    capacity_bytes: int
    ready: bool
    last_error: str | None
    rejected: dict[str, int]  # invalid events refused at the call site, by reason
    latency_counts: tuple[int, ...]  # per bucket of LATENCY_BUCKETS plus +Inf, not cumulative
    latency_sum: float


class Outbox:
    """Bounded buffer plus delivery thread.

    Parameters
    ----------
    producer_factory
        Builds a connected ``KafkaProducer``; raises when Kafka cannot be reached.
        Called again after a failure, so it must be cheap to retry.
    capacity
        Most records accepted but not yet acknowledged.
    capacity_bytes
        Most bytes (encoded values) accepted but not yet acknowledged.
    batch_events
        Most records handed to the producer per chunk.
    linger_s
        How long the thread sleeps when the buffer is empty.
    retry_backoff_s, retry_backoff_max_s
        Back-off after a failed chunk or connection attempt, doubling up to the max.
    stall_s
        A chunk unacknowledged for longer than this makes :attr:`ready` false.
    give_up_s
        A chunk unacknowledged for longer than this is aborted and re-queued (the
        producer's own delivery timeout should have failed it before).
    probe_interval_s
        While idle, how often to check that the producer still has a connection.
    """

    def __init__(
        self,
        producer_factory: Callable[[], Any],
        *,
        capacity: int = 100_000,
        capacity_bytes: int = 256 * 1024 * 1024,
        batch_events: int = 2000,
        linger_s: float = 0.01,
        retry_backoff_s: float = 0.1,
        retry_backoff_max_s: float = 2.0,
        stall_s: float = 5.0,
        give_up_s: float = 60.0,
        probe_interval_s: float = 2.0,
        name: str = "driftd-sidecar",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 (got {capacity})")
        if batch_events < 1:
            raise ValueError(f"batch_events must be at least 1 (got {batch_events})")
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self.batch_events = batch_events
        self.linger_s = linger_s
        self.retry_backoff_s = retry_backoff_s
        self.retry_backoff_max_s = retry_backoff_max_s
        self.stall_s = stall_s
        self.give_up_s = give_up_s
        self.probe_interval_s = probe_interval_s
        self._producer_factory = producer_factory
        self._name = name
        self._reset()
        self._start()
        # Pre-forking servers (gunicorn, uWSGI) fork after the logger exists; threads
        # do not survive fork, so the child starts its own (with an empty buffer).
        outbox = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (o := outbox()) is not None and o._after_fork_in_child())

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        if self._closing:
            return
        # The parent's producer has no I/O thread here; keep it referenced so that its
        # finaliser never runs in the child, and start afresh.
        self._orphaned_producer = self._producer
        self._reset()
        self._start()

    def _reset(self) -> None:
        self._queue: deque[Record] = deque()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._pending = 0  # queued + in flight
        self._pending_bytes = 0
        self._accepted = 0
        self._dropped = 0
        self._sent = 0
        self._errors = 0
        self._rejected: dict[str, int] = {}
        self._latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._producer: Any = None
        self._connected = False
        self._inflight_since: float | None = None
        self._last_error: str | None = None
        self._closing = False
        self._abandon = False

    # -- caller side -------------------------------------------------------------

    def offer(self, record: Record) -> bool:
        """Queue one record; False (and counted as dropped) when the buffer is full."""
        size = len(record[2])
        with self._lock:
            if self._pending >= self.capacity or self._pending_bytes + size > self.capacity_bytes:
                self._dropped += 1
                return False
            self._pending += 1
            self._pending_bytes += size
            self._accepted += 1
        self._queue.append(record)
        return True

    def offer_all(self, records: Sequence[Record]) -> bool:
        """Queue all records or none; False when they do not all fit (nothing is counted)."""
        size = sum(len(record[2]) for record in records)
        with self._lock:
            if (self._pending + len(records) > self.capacity
                    or self._pending_bytes + size > self.capacity_bytes):
                return False
            self._pending += len(records)
            self._pending_bytes += size
            self._accepted += len(records)
        self._queue.extend(records)
        return True

    def count_rejected(self, reason: str, events: int = 1) -> None:
        """Count events refused before reaching the buffer (bounded set of reasons)."""
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + events

    def fill_ratio(self) -> float:
        """Share of the buffer in use: the larger of the record and byte shares."""
        return max(self._pending / self.capacity, self._pending_bytes / self.capacity_bytes)

    @property
    def ready(self) -> bool:
        """Connected to Kafka, and the last chunk was acknowledged without stalling."""
        since = self._inflight_since
        stalled = since is not None and time.monotonic() - since > self.stall_s
        return self._connected and not stalled

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted record is acknowledged; False on timeout."""
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._drained:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._drained.wait(remaining if remaining is not None else 1.0)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is buffered within ``timeout`` seconds, then stop.

        Returns False when records were still undelivered at the deadline; they are
        lost and the number is in ``stats().buffered``.
        """
        delivered = self.flush(timeout)
        self._closing = True
        if not delivered:
            self._abandon = True
        self._wake.set()
        self._thread.join(timeout=max(1.0, self.stall_s))
        if not delivered:
            log.warning("sidecar closed with %d undelivered events", self._pending)
        return delivered

    def stats(self) -> DeliveryStats:
        with self._lock:
            return DeliveryStats(
                accepted=self._accepted,
                dropped=self._dropped,
                sent=self._sent,
                errors=self._errors,
                buffered=self._pending,
                capacity=self.capacity,
                buffered_bytes=self._pending_bytes,
                capacity_bytes=self.capacity_bytes,
                ready=self.ready,
                last_error=self._last_error,
                rejected=dict(self._rejected),
                latency_counts=tuple(self._latency_counts),
                latency_sum=self._latency_sum,
            )

    @property
    def alive(self) -> bool:
        """Whether the delivery thread is running."""
        return self._thread.is_alive()

    # -- delivery thread ---------------------------------------------------------

    def _run(self) -> None:
        backoff = self.retry_backoff_s
        last_probe = time.monotonic()
        while not (self._abandon or (self._closing and not self._queue)):
            if self._producer is None and not self._connect():
                backoff = self._pause(backoff)
                continue
            chunk = self._take()
            if not chunk:
                self._wake.wait(self.linger_s)
                self._wake.clear()
                if time.monotonic() - last_probe > self.probe_interval_s:
                    last_probe = time.monotonic()
                    self._probe()
                continue
            if self._deliver(chunk):
                backoff = self.retry_backoff_s
            else:
                backoff = self._pause(backoff)
        self._disconnect(timeout=0 if self._abandon else 1.0)

    def _pause(self, backoff: float) -> float:
        self._wake.wait(backoff)
        self._wake.clear()
        return min(backoff * 2, self.retry_backoff_max_s)

    def _connect(self) -> bool:
        try:
            self._producer = self._producer_factory()
        except Exception as exc:  # noqa: BLE001 - any failure means "Kafka not reachable yet"
            self._fail(exc)
            return False
        self._connected = True
        return True

    def _disconnect(self, timeout: float) -> None:
        producer, self._producer = self._producer, None
        self._connected = False
        if producer is not None:
            try:
                producer.close(timeout=timeout)
            except Exception:  # closing a broken producer must not kill the thread
                log.debug("error closing the Kafka producer", exc_info=True)

    def _probe(self) -> None:
        """Notice a lost connection while idle: reconnect so that ``ready`` tells the truth."""
        try:
            connections = self._producer.metrics().get("producer-metrics", {}).get("connection-count")
        except Exception:  # noqa: BLE001 - metrics are best effort
            return
        if connections == 0:
            self._disconnect(timeout=0)

    def _take(self) -> list[Record]:
        chunk: list[Record] = []
        queue = self._queue
        try:
            for _ in range(self.batch_events):
                chunk.append(queue.popleft())
        except IndexError:
            pass
        return chunk

    def _deliver(self, chunk: list[Record]) -> bool:
        """Send one chunk and wait for every acknowledgement; True when all succeeded.

        On any failure the producer is closed and rebuilt before the next attempt: a
        fresh producer fetches metadata again, which matters when the broker came back
        without the topic.
        """
        producer = self._producer
        started = time.monotonic()
        self._inflight_since = started
        futures = []
        error: BaseException | None = None
        try:
            for topic, key, value in chunk:
                futures.append(producer.send(topic, value, key=key))
        except Exception as exc:  # noqa: BLE001 - metadata timeout (Kafka gone) or a broken producer
            error = exc
        while True:
            try:
                producer.flush(timeout=0.25)
                break
            except KafkaTimeoutError:
                pass
            except Exception as exc:  # noqa: BLE001
                error = exc
                break
            if self._abandon or time.monotonic() - started > self.give_up_s:
                # The producer should have expired these records itself by now; they
                # count as failed and closing the producer aborts them.
                error = error or KafkaTimeoutError(f"no acknowledgement within {self.give_up_s:.0f} s")
                break
        failed = [record for record, future in zip(chunk, futures) if not future.succeeded()]
        failed.extend(chunk[len(futures):])
        for future in futures:
            if future.failed():
                error = error or future.exception
        ok = len(chunk) - len(failed)
        ok_bytes = sum(len(record[2]) for record in chunk) - sum(len(record[2]) for record in failed)
        elapsed = time.monotonic() - started
        with self._lock:
            self._inflight_since = None
            self._sent += ok
            self._pending -= ok
            self._pending_bytes -= ok_bytes
            self._errors += len(failed)
            if ok:
                self._observe(elapsed)
            if not self._pending:
                self._drained.notify_all()
        if failed:
            self._queue.extendleft(reversed(failed))
            self._fail(error)
            self._disconnect(timeout=0)
            return False
        self._connected = True
        self._last_error = None
        return True

    def _observe(self, seconds: float) -> None:
        self._latency_sum += seconds
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self._latency_counts[index] += 1
                return
        self._latency_counts[-1] += 1

    def _fail(self, error: BaseException | None) -> None:
        self._connected = False
        message = describe(error)
        if message != self._last_error:
            log.warning("Kafka delivery failing: %s", message)
        self._last_error = message


def describe(error: BaseException | None) -> str:
    """A one-line description of a Kafka failure for logs, stats and /readyz."""
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {error}"[:500]
