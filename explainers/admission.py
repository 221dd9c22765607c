"""The ingest side of explanations: sampling, the budget, the bounded queue, drops counted.

The consumer loop calls :meth:`Admission.offer` with each decoded batch; it picks
rows (:mod:`explainers.sampling`), applies the model's budget, and appends what fits
to a bounded queue, all with numpy and one short lock, and returns. It never waits:
rows that do not fit are dropped and counted in
``driftd_explain_dropped_total{model,reason}`` (``budget``, ``queue_full``,
``model_unavailable``, ``not_cached``; the stages after this one count their own).
When every row is picked (a rate of 1) and the queue is full, ``offer`` counts the
batch as dropped without touching its rows: no id is hashed unless there is room to
choose among the rows.

The stage that executes tasks (the process pool, or the Kafka publisher) takes them
with :meth:`Admission.wait_task` — round-robin over models, up to ``task_rows`` rows,
once a task is full or its oldest row has lingered ``task_linger`` seconds — and
calls :meth:`Admission.finish` when a task has left its hands. Depth counts rows
admitted and not yet finished (queued plus in flight), and is what the capacity
(``explain.queue_size``) bounds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from explainers.models import ModelState
from explainers.sampling import WRONG, id_hashes, most_important, sampling_keys
from monitor.batch import PredictionBatch
from monitor.metrics import PipelineMetrics

__all__ = ["Admission", "Chunk", "Task"]


@dataclass(slots=True)
class Chunk:
    """Admitted rows of one batch, waiting for a worker."""

    batch: PredictionBatch
    window_starts: np.ndarray
    reasons: np.ndarray
    queued_at: float  # time.monotonic() when admitted

    def __len__(self) -> int:
        return len(self.batch)

    def split(self, n: int) -> tuple[Chunk, Chunk]:
        head, tail = np.arange(n), np.arange(n, len(self))
        return self._take(head), self._take(tail)

    def _take(self, rows: np.ndarray) -> Chunk:
        return Chunk(self.batch.take(rows), self.window_starts[rows], self.reasons[rows], self.queued_at)

    def as_tuple(self) -> tuple[PredictionBatch, np.ndarray, np.ndarray]:
        """The chunk as the workers take it (:data:`explainers.rows.Chunk`)."""
        return self.batch, self.window_starts, self.reasons


@dataclass(slots=True)
class Task:
    """Rows of one model explained together."""

    model: str
    chunks: list[Chunk]
    rows: int

    def event_times(self) -> np.ndarray:
        return np.concatenate([chunk.batch.event_times for chunk in self.chunks])


class Admission:
    """Sampling, budget and the bounded queue, shared by the ingest thread and one executor.

    Parameters
    ----------
    models
        Model name → :class:`~explainers.models.ModelState`.
    capacity
        Rows queued or in flight at most (``explain.queue_size``).
    metrics
        Pipeline metrics (queue depth, capacity, drops).
    task_rows, task_linger
        Most rows per task, and how long queued rows may wait for more to fill one.
    explain_wrong
        Whether :meth:`offer_wrong` explains anything.
    """

    def __init__(
        self, models: dict[str, ModelState], capacity: int, metrics: PipelineMetrics,
        task_rows: int, task_linger: float, explain_wrong: bool,
    ) -> None:
        self.models = models
        self.capacity = capacity
        self.metrics = metrics
        self.task_rows = task_rows
        self.task_linger = task_linger
        self.explain_wrong = explain_wrong
        self.lock = threading.Condition()
        self.closing = False
        self.drain_deadline = float("inf")
        self.depth = 0
        self.in_flight = 0
        self._queues: dict[str, deque[Chunk]] = {name: deque() for name in models}
        self._queued_rows: dict[str, int] = dict.fromkeys(models, 0)
        self._order: deque[str] = deque(self._queues)
        self._flushing = 0  # flush() calls waiting: queued rows go without lingering
        metrics.explain_queue_capacity.set(capacity)
        metrics.explain_queue_depth.set(0)

    # -- the ingest side: never blocks ---------------------------------------------------

    def offer(self, batch: PredictionBatch, window_starts: np.ndarray, drifted: bool = False) -> int:
        """Pick rows of ``batch`` to explain and queue them; returns how many were queued."""
        state = self.models.get(batch.model)
        if state is None or self.closing or len(batch) == 0:
            return 0
        window_starts = np.asarray(window_starts, dtype=np.float64)
        hashes = keys = None
        if state.policy.picks_all(drifted):
            # Every row is picked: the ids are hashed only if the queue has room to
            # choose among them (see _admit), so a full queue costs no per-row work.
            codes = state.policy.reasons(None, batch.scores, drifted, n=len(batch))
        else:
            hashes = id_hashes(batch.prediction_ids)
            keys = sampling_keys(hashes)
            codes = state.policy.reasons(keys, batch.scores, drifted)
        entry = None
        if state.recent is not None and state.error is None:
            entry = state.recent.add(batch, window_starts, hashes)
        admitted = self._admit(state, batch, window_starts, codes, keys)
        if entry is not None:
            state.recent.mark_explained(entry, admitted)
        return len(admitted)

    def offer_wrong(self, prediction_ids: Sequence[str], model: str | None = None) -> int:
        """Queue cached predictions whose label showed them wrong; returns how many."""
        if not self.explain_wrong or self.closing or not prediction_ids:
            return 0
        ids = [str(p) for p in prediction_ids]
        hashes = id_hashes(ids)
        queued = 0
        names = [model] if model is not None else list(self.models)
        for name in names:
            state = self.models.get(name)
            if state is None or state.recent is None:
                continue
            groups, _, found = state.recent.find(name, ids, hashes)
            if model is not None and found < len(set(ids)):
                self.drop(name, "not_cached", len(set(ids)) - found)
            for batch, window_starts, entry, rows in groups:
                codes = np.full(len(batch), WRONG, dtype=np.int8)
                keys = sampling_keys(id_hashes(batch.prediction_ids))
                admitted = self._admit(state, batch, window_starts, codes, keys)
                state.recent.mark_explained(entry, rows[admitted])
                queued += len(admitted)
        return queued

    def _admit(
        self, state: ModelState, batch: PredictionBatch, window_starts: np.ndarray,
        codes: np.ndarray, keys: np.ndarray | None,
    ) -> np.ndarray:
        """Queue what the budget and the queue allow; returns the admitted row indices.

        ``keys`` (sampling keys) may be None; they are computed only when the budget
        or the queue cuts the picked rows short and the most important must be chosen.
        """
        none = np.empty(0, dtype=np.int64)
        picked = int(np.count_nonzero(codes))
        if picked == 0:
            return none
        if state.error is not None:
            self.drop(state.name, "model_unavailable", picked)
            return none
        granted = state.bucket.take(picked)
        with self.lock:
            take = min(granted, max(0, self.capacity - self.depth))
            self.depth += take
        self.drop(state.name, "budget", picked - granted)
        self.drop(state.name, "queue_full", granted - take)
        if take == 0:
            return none
        if take < picked and keys is None:
            keys = sampling_keys(id_hashes(batch.prediction_ids))
        rows = most_important(codes, keys, take) if take < picked else np.flatnonzero(codes)
        chunk = Chunk(batch.take(rows), window_starts[rows], codes[rows], time.monotonic())
        with self.lock:
            queued = self._queued_rows[state.name]
            self._queues[state.name].append(chunk)
            self._queued_rows[state.name] = queued + take
            # Wake the executor when there is a new oldest row (it then sleeps until
            # that row's linger ends) or a full task; not for every batch.
            if queued == 0 or (queued < self.task_rows <= queued + take):
                self.lock.notify_all()
        self.metrics.explain_queue_depth.set(self.depth)
        return rows

    def drop(self, model: str, reason: str, n: int) -> None:
        """Count ``n`` rows of ``model`` as dropped for ``reason``."""
        if n > 0:
            self.metrics.explain_dropped.labels(model=model, reason=reason).inc(n)

    # -- the executor side -----------------------------------------------------------------

    def _next_task(self, now: float) -> tuple[Task | None, float]:
        """Up to ``task_rows`` queued rows of the next model (round-robin) that has a
        full task, rows that lingered ``task_linger``, or must go now (flush, close);
        else None and the time (monotonic) the first queued row's linger ends."""
        wake = float("inf")
        hurry = self.closing or self._flushing > 0
        for _ in range(len(self._order)):
            name = self._order[0]
            self._order.rotate(-1)
            queue = self._queues[name]
            if not queue:
                continue
            due = queue[0].queued_at + self.task_linger
            if not hurry and self._queued_rows[name] < self.task_rows and now < due:
                wake = min(wake, due)
                continue
            chunks: list[Chunk] = []
            rows = 0
            while queue and rows < self.task_rows:
                chunk = queue.popleft()
                if rows + len(chunk) > self.task_rows:
                    chunk, rest = chunk.split(self.task_rows - rows)
                    queue.appendleft(rest)
                chunks.append(chunk)
                rows += len(chunk)
            self._queued_rows[name] -= rows
            return Task(name, chunks, rows), wake
        return None, wake

    def wait_task(self, max_in_flight: int) -> Task | None:
        """Block until a task is due and fewer than ``max_in_flight`` are out; None once
        closing and the queue is empty or its drain deadline has passed."""
        with self.lock:
            while True:
                task, wake = None, float("inf")
                if self.in_flight < max_in_flight:
                    task, wake = self._next_task(time.monotonic())
                if task is not None:
                    self.in_flight += 1
                    return task
                if self.closing:
                    queued = any(self._queues.values())
                    if not queued or time.monotonic() >= self.drain_deadline:
                        return None  # close() counts what is left
                self.lock.wait(min(0.5, max(0.001, wake - time.monotonic())))

    def finish(self, task: Task) -> None:
        """``task`` left the executor's hands (explained, published, or counted as dropped)."""
        with self.lock:
            self.in_flight -= 1
            self.depth -= task.rows
            self.lock.notify_all()
        self.metrics.explain_queue_depth.set(self.depth)

    @property
    def idle(self) -> bool:
        """Nothing queued or in flight."""
        with self.lock:
            return self.depth == 0

    @contextmanager
    def hurry(self) -> Iterator[None]:
        """While inside, queued rows go at once instead of lingering (for flush)."""
        with self.lock:
            self._flushing += 1
            self.lock.notify_all()
        try:
            yield
        finally:
            with self.lock:
                self._flushing -= 1

    def start_closing(self, deadline: float) -> None:
        """Accept no more rows; the executor drains the queue until ``deadline``."""
        with self.lock:
            self.closing = True
            self.drain_deadline = deadline
            self.lock.notify_all()

    def drop_queued(self) -> None:
        """Count every row still queued as dropped (``shutdown``) and empty the queue."""
        with self.lock:
            for name, queue in self._queues.items():
                left = sum(len(chunk) for chunk in queue)
                queue.clear()
                self._queued_rows[name] = 0
                self.depth -= left
                self.drop(name, "shutdown", left)
            self.lock.notify_all()

    def wait_in_flight(self, deadline: float) -> bool:
        """Wait until no task is in flight or ``deadline`` (monotonic); True when none is."""
        with self.lock:
            while self.in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(0.05, left))
            return True
