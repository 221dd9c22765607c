"""A background writer that keeps the daemon running while the store is slow or down.

The consumer loop hands window reports, explanations, sequential alarms and
checkpoints to :class:`StoreWriter` and carries on: enqueueing never blocks and never touches
the database. One thread writes the queue in order (first in, first out), in
batches, so a checkpoint is stored only after every report enqueued before it.

When the database cannot be reached (:class:`StoreUnavailable`), the thread
retries the same batch with exponential backoff (capped) until it succeeds,
while new work waits in a bounded buffer. When the buffer is full the oldest
report or explanation is dropped and counted; checkpoints are never dropped,
but a newer checkpoint of the same name replaces an older one that is still
pending (only the newest offsets matter). Other errors (a value the database
refuses) are retried a few times, then the batch is written item by item and
the items that still fail are dropped, counted and logged, so one bad report
cannot stall the queue.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.metrics import PipelineMetrics
from monitor.results import WindowReport
from monitor.store.errors import StoreError, StoreUnavailable
from monitor.store.store import Store

__all__ = ["StoreWriter"]

log = logging.getLogger(__name__)

# Operation names (the ``operation`` label of driftd_store_errors_total and the keys of
# ``dropped`` / ``written``) are the Store methods they call.
REPORTS = "write_reports"
EXPLANATIONS = "add_explanations"
ALARMS = "add_alarms"
CHECKPOINT = "save_checkpoint"
MIGRATE = "migrate"


@dataclass(slots=True)
class _Checkpoint:
    name: str
    offsets: dict[str, int]
    state: bytes
    on_saved: Callable[[str, dict[str, int]], None] | None = None


@dataclass(slots=True)
class _Batch:
    kind: str
    items: list[Any] = field(default_factory=list)


class StoreWriter:
    """Writes reports, explanations, alarms and checkpoints to a :class:`Store` from one thread.

    Parameters
    ----------
    store
        Where to write. It may be unreachable when the writer starts.
    max_pending
        Capacity of the buffer, in reports, explanation rows and alarms. Checkpoints
        do not count (at most one per name is pending).
    batch_size
        Most reports, explanation rows or alarms written in one transaction.
    metrics
        When given, ``store_errors{operation}`` counts failed attempts,
        ``store_pending`` follows the buffer, ``capacity_dropped{cap="store_pending"}``
        counts dropped items, and ``checkpoints`` / ``last_checkpoint`` follow
        saved checkpoints.
    on_error
        Called with ``(operation, error)`` after every failed attempt.
    ensure_schema
        Run ``store.migrate()`` (retried like any write) before the first write,
        for a store that was opened with ``create=False`` because it was down.
    backoff_initial, backoff_max
        First and largest delay between attempts, in seconds.
    max_attempts
        Attempts for errors other than :class:`StoreUnavailable` before the batch
        is split and the failing items are dropped.
    stall_timeout
        An attempt still running after this many seconds makes :attr:`healthy`
        False: a paused or wedged database server accepts the connection and then
        never answers, which no error reports.

    Examples
    --------
    >>> from monitor.store import open_store
    >>> writer = StoreWriter(open_store("sqlite://"))
    >>> writer.save_checkpoint("driftd", {"predictions:0": 42}, b"state")
    >>> writer.flush(5.0), writer.healthy
    (True, True)
    >>> writer.close()
    True
    """

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int = 10_000,
        batch_size: int = 500,
        metrics: PipelineMetrics | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
        ensure_schema: bool = False,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        max_attempts: int = 3,
        stall_timeout: float = 30.0,
    ) -> None:
        if max_pending < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("max_pending, batch_size and max_attempts must be >= 1")
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("backoff delays must satisfy 0 < backoff_initial <= backoff_max")
        self.store = store
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.metrics = metrics
        self.on_error = on_error
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        self.stall_timeout = stall_timeout
        self._attempt_started: float | None = None
        self._queue: deque[tuple[str, Any]] = deque()
        self._droppable = 0  # reports, explanation rows and alarms in the queue
        self._in_flight = 0
        self._dropped = {REPORTS: 0, EXPLANATIONS: 0, ALARMS: 0, CHECKPOINT: 0}
        self._written = dict.fromkeys(self._dropped, 0)
        self._healthy = True
        self._last_error: str | None = None
        self._needs_schema = ensure_schema
        self._closing = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="driftd-store-writer", daemon=True)
        self._thread.start()

    # -- what the caller sees ------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """False while the last write attempt failed or the current one stalls (``/readyz``)."""
        started = self._attempt_started
        if started is not None and time.monotonic() - started > self.stall_timeout:
            return False
        return self._healthy

    @property
    def last_error(self) -> str | None:
        """The message of the last failed attempt (or of a stall), or None after a success."""
        started = self._attempt_started
        if started is not None and time.monotonic() - started > self.stall_timeout:
            return f"the store has not answered for {time.monotonic() - started:.0f} s"
        return self._last_error

    @property
    def pending(self) -> int:
        """Operations not yet written: buffered items, pending checkpoints, the batch in flight."""
        with self._cond:
            return len(self._queue) + self._in_flight

    @property
    def dropped(self) -> dict[str, int]:
        """Items dropped so far, by kind (full buffer, or refused by the database)."""
        with self._cond:
            return dict(self._dropped)

    @property
    def written(self) -> dict[str, int]:
        """Items written so far, by kind."""
        with self._cond:
            return dict(self._written)

    def write_reports(self, reports: Sequence[WindowReport]) -> None:
        """Queue window reports for :meth:`Store.write_reports`; returns at once.

        Each report is copied (shallowly) here, so the caller may go on completing
        it (labels, attribution) and queue it again while this version waits.
        """
        self._put(REPORTS, [copy.copy(report) for report in reports])

    def add_explanations(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue explanation rows for :meth:`Store.add_explanations`; returns at once.

        ``created_at`` is fixed here when missing, so that a write retried after a
        lost connection is recognised as the same row and stored once.
        """
        now = time.time()
        self._put(
            EXPLANATIONS,
            [row if "created_at" in row else {**row, "created_at": now} for row in rows],
        )

    def add_alarms(self, alarms: Sequence[Any]) -> None:
        """Queue sequential alarms for :meth:`Store.add_alarms`; returns at once."""
        self._put(ALARMS, list(alarms))

    def save_checkpoint(
        self,
        name: str,
        offsets: Mapping[str, int],
        state: bytes,
        on_saved: Callable[[str, dict[str, int]], None] | None = None,
    ) -> None:
        """Queue a checkpoint; it is stored after everything queued before it.

        A pending checkpoint of the same name is replaced (its ``on_saved`` is not
        called). ``on_saved(name, offsets)`` runs on the writer thread once this
        checkpoint is stored: the place to commit the offsets to Kafka.
        """
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"checkpoint state must be bytes, got {type(state).__name__}")
        checkpoint = _Checkpoint(
            name, {str(k): int(v) for k, v in offsets.items()}, bytes(state), on_saved
        )
        with self._cond:
            self._check_open()
            for index, (kind, item) in enumerate(self._queue):
                if kind == CHECKPOINT and item.name == name:
                    del self._queue[index]
                    break
            self._queue.append((CHECKPOINT, checkpoint))
            self._changed()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued (up to ``timeout`` seconds), then stop the thread.

        Returns True when everything was written; otherwise what is left is logged
        and abandoned.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(self.backoff_max + 5.0)
        left = self.pending
        if left:
            log.error("store writer closed with %d operation(s) not written: %s", left, self._last_error)
        return left == 0

    # -- queue ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise StoreError("the store writer is closed")

    def _put(self, kind: str, items: list[Any]) -> None:
        if not items:
            return
        with self._cond:
            self._check_open()
            # Items beyond the capacity of an empty buffer could never fit.
            for item in items[-self.max_pending :]:
                if self._droppable >= self.max_pending:
                    self._drop_oldest()
                self._queue.append((kind, item))
                self._droppable += 1
            if len(items) > self.max_pending:
                self._count_dropped(kind, len(items) - self.max_pending)
            self._changed()

    def _drop_oldest(self) -> None:
        for index, (kind, _item) in enumerate(self._queue):
            if kind != CHECKPOINT:
                del self._queue[index]
                self._droppable -= 1
                self._count_dropped(kind, 1)
                return

    def _count_dropped(self, kind: str, n: int) -> None:
        self._dropped[kind] += n
        if self.metrics is not None:
            self.metrics.capacity_dropped.labels(cap="store_pending").inc(n)

    def _changed(self) -> None:
        if self.metrics is not None:
            self.metrics.store_pending.set(len(self._queue) + self._in_flight)
        self._cond.notify_all()

    def _next_batch(self) -> _Batch | None:
        """Wait for work; None when closing with nothing left."""
        with self._cond:
            while not self._queue and not self._needs_schema:
                if self._closing:
                    return None
                self._cond.wait()
            if self._needs_schema:
                return _Batch(MIGRATE)
            kind, item = self._queue.popleft()
            batch = _Batch(kind, [item])
            if kind != CHECKPOINT:
                self._droppable -= 1
                while (
                    self._queue and self._queue[0][0] == kind and len(batch.items) < self.batch_size
                ):
                    batch.items.append(self._queue.popleft()[1])
                    self._droppable -= 1
            self._in_flight = len(batch.items)
            self._changed()
            return batch

    # -- writing -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not self._write_with_retries(batch) and self._stop.is_set():
                return
            with self._cond:
                if batch.kind == MIGRATE:
                    self._needs_schema = False
                self._in_flight = 0
                self._changed()

    def _write_with_retries(self, batch: _Batch) -> bool:
        """Write ``batch``; True when it was written (or given up on), False when stopped."""
        attempt = 0
        while True:
            try:
                self._write(batch.kind, batch.items)
            except StoreError as error:
                self._failed(batch.kind, error)
                attempt += 1
                if not isinstance(error, StoreUnavailable) and attempt >= self.max_attempts:
                    self._write_one_by_one(batch)
                    return True
                delay = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
                # Jitter keeps several daemons from hammering a recovering server in step.
                if self._stop.wait(delay * random.uniform(0.5, 1.0)):
                    return False
            except Exception as error:  # noqa: BLE001 - a bug must not kill the thread
                log.exception("store writer: unexpected error writing %s", batch.kind)
                self._failed(batch.kind, error)
                self._write_one_by_one(batch)
                return True
            else:
                self._succeeded(batch.kind, batch.items)
                return True

    def _write(self, kind: str, items: list[Any]) -> None:
        self._attempt_started = time.monotonic()
        try:
            if kind == CHECKPOINT:
                (checkpoint,) = items
                self.store.save_checkpoint(checkpoint.name, checkpoint.offsets, checkpoint.state)
            elif kind == MIGRATE:
                self.store.migrate()
            else:  # reports, explanations, alarms: the Store method of that name
                getattr(self.store, kind)(items)
        finally:
            self._attempt_started = None

    def _write_one_by_one(self, batch: _Batch) -> None:
        """Isolate the items the database refuses; drop and count those, write the rest."""
        for item in batch.items:
            try:
                self._write(batch.kind, [item])
            except Exception as error:  # noqa: BLE001 - logged, counted, dropped
                self._failed(batch.kind, error)
                log.error(
                    "store writer: dropping one %s item the store refuses: %s", batch.kind, error
                )
                with self._cond:
                    if batch.kind in self._dropped:
                        self._count_dropped(batch.kind, 1)
            else:
                self._succeeded(batch.kind, [item])

    def _failed(self, kind: str, error: Exception) -> None:
        if self._healthy:
            log.warning("store writer: %s failed, retrying: %s", kind, error)
        self._healthy = False
        self._last_error = str(error)
        if self.metrics is not None:
            self.metrics.store_errors.labels(operation=kind).inc()
        if self.on_error is not None:
            try:
                self.on_error(kind, error)
            except Exception:  # noqa: BLE001 - a callback must not stop the writer
                log.exception("store writer: on_error callback failed")

    def _succeeded(self, kind: str, items: list[Any]) -> None:
        if not self._healthy:
            log.info("store writer: store reachable again")
        self._healthy = True
        self._last_error = None
        if kind == MIGRATE:
            return
        with self._cond:
            self._written[kind] += len(items)
        if kind == CHECKPOINT:
            (checkpoint,) = items
            if self.metrics is not None:
                self.metrics.checkpoints.inc()
                self.metrics.last_checkpoint.set(time.time())
            if checkpoint.on_saved is not None:
                try:
                    checkpoint.on_saved(checkpoint.name, dict(checkpoint.offsets))
                except Exception:  # noqa: BLE001 - a callback must not stop the writer
                    log.exception("store writer: on_saved callback failed")
