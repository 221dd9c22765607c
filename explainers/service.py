"""The explanation service: sampling, a bounded queue, a process pool that writes to the store.

SHAP never runs on the ingest path. The consumer loop calls :meth:`ExplainService.offer`
with each decoded batch; ``offer`` picks rows (:mod:`explainers.sampling`), applies the
model's budget, and appends what fits to a bounded queue, all with numpy and one
short lock, and returns. It never waits: rows that do not fit are dropped and
counted in ``driftd_explain_dropped_total{model,reason}``:

``budget``            the model's explanations/s budget (``explain.max_per_second``) is spent
``queue_full``        the queue holds ``explain.queue_size`` rows (queued or being explained)
``model_unavailable`` the model file could not be loaded (see the startup log)
``not_cached``        a prediction found wrong is no longer in the recent-rows cache
``worker_error``      the worker failed (the error is logged)
``additivity``        base value + Σ SHAP did not match the model output
``store_error``       the store refused or could not take the rows
``shutdown``          still queued when :meth:`close` gave up waiting

When every row is picked (a rate of 1) and the queue is full, ``offer`` counts the
batch as dropped without touching its rows: no id is hashed unless there is room to
choose among the rows.

Three threads of the daemon process do the rest, in this order:

1. the *dispatcher* takes queued rows (round-robin over models, up to
   ``task_rows`` rows per task) and submits them to a ``ProcessPoolExecutor``
   (``forkserver`` start method; each worker loads every model once in its
   initializer), with at most two tasks per worker in flight;
2. the worker (:mod:`explainers.worker`) encodes the rows, explains them, checks
   additivity, **writes the explanations to the store itself** (one transaction per
   task, through its own connection) and returns only |SHAP| sums per window, the
   commit time and any store error; the pool's own thread hands that to
3. the *collector*, which adds the sums to the windows' running sums for
   attribution drift, observes the latency from event time to committed write and
   counts explanations and drops: O(windows × features) per task, not O(rows), so
   that explaining competes as little as possible with ingest for the daemon's GIL.

Workers write when they can open the store themselves (a :class:`~monitor.store.Store`
or a :class:`~monitor.store.writer.StoreWriter` over a file or server database).
Otherwise (in-memory SQLite, another store object) they send the rows back and the
collector writes them in batches, as ``write_batch_size`` and ``flush_interval``
say. A store that refuses or cannot take the rows costs the rows
(``store_error``), never the daemon.

Queue depth counts rows admitted and not yet explained (queued plus in flight).
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from detectors.attribution import attribution_drift
from explainers import worker
from explainers.encoding import FeatureEncoder
from explainers.errors import AdditivityError, ExplainError, ModelLoadError
from explainers.loading import load_model
from explainers.recent import RecentRows
from explainers.sampling import WRONG, SamplingPolicy, TokenBucket, id_hashes, most_important, sampling_keys
from explainers.window_attribution import WindowAttributions
from monitor.batch import PredictionBatch
from monitor.config import ExplainSettings, ModelSettings
from monitor.metrics import PipelineMetrics, observe_many
from monitor.results import AttributionSummary, WindowKey

__all__ = ["ExplainService"]

log = logging.getLogger(__name__)

BaselineSource = Mapping[Any, Any] | Callable[[str, str | None], Any]


@dataclass(slots=True)
class _Chunk:
    """Admitted rows of one batch, waiting for a worker."""

    batch: PredictionBatch
    window_starts: np.ndarray
    reasons: np.ndarray
    queued_at: float  # time.monotonic() when admitted

    def __len__(self) -> int:
        return len(self.batch)

    def split(self, n: int) -> tuple[_Chunk, _Chunk]:
        head, tail = np.arange(n), np.arange(n, len(self))
        return self._take(head), self._take(tail)

    def _take(self, rows: np.ndarray) -> _Chunk:
        return _Chunk(self.batch.take(rows), self.window_starts[rows], self.reasons[rows], self.queued_at)


@dataclass(slots=True)
class _Task:
    model: str
    chunks: list[_Chunk]
    rows: int


@dataclass(slots=True)
class _Model:
    """What the service knows about one explainable model."""

    name: str
    policy: SamplingPolicy
    bucket: TokenBucket
    recent: RecentRows | None
    spec: worker.WorkerModel | None
    error: str | None = None


class ExplainService:
    """Explains sampled predictions in worker processes and stores the results.

    Parameters
    ----------
    settings
        The ``explain`` section of the configuration.
    models
        Model name → its settings; models without ``model_file`` are not explained.
    baselines
        Model name → :class:`~monitor.baseline.Baseline` (or ``(model, version)`` →
        baseline, or a callable ``(model, version) -> Baseline | None``). Used for the
        permutation explainer's background (``reference_rows``), for feature names
        of models whose file does not name them, and for the global importances
        attribution drift compares against.
    store
        A :class:`~monitor.store.Store` or a :class:`~monitor.store.writer.StoreWriter`.
        The workers open the same database and write the explanations themselves
        (latency measured to their committed write); for an in-memory SQLite store
        or any other object with ``add_explanations`` the collector thread writes the
        rows the workers send back (to a ``StoreWriter``: latency to the hand-over).
    metrics
        Pipeline metrics to update.
    clock
        Wall clock in epoch seconds, for the budget and for the latency of rows the
        collector writes (workers that write take the time of their own commit).
    task_rows
        Most rows explained in one worker task.
    task_linger
        Seconds queued rows may wait for more to fill a task of ``task_rows`` (a
        budget of 50/s thus makes a dozen tasks of ~12 rows a second, not 50 tasks
        of one row: every task costs the daemon pickling and bookkeeping).
        :meth:`flush` and :meth:`close` do not wait for it.
    recent_rows
        Predictions remembered per model for :meth:`offer_wrong`.
    min_explanations
        Explanations a window needs before attribution drift is decided.
    max_windows
        Windows whose |SHAP| sums are kept (oldest evicted).
    start_method
        ``forkserver`` (default) or ``spawn``; see :func:`_context`. Never ``fork``:
        the daemon runs threads, which ``fork`` would copy in an undefined state.

    Raises
    ------
    ExplainError
        Never for a bad model file: that model is logged, recorded in
        :attr:`load_errors` and skipped, and the daemon runs on.
    """

    def __init__(
        self,
        settings: ExplainSettings,
        models: Mapping[str, ModelSettings],
        baselines: BaselineSource,
        store: Any,
        metrics: PipelineMetrics,
        clock: Callable[[], float] = time.time,
        *,
        task_rows: int = 256,
        task_linger: float = 0.25,
        recent_rows: int = 10_000,
        min_explanations: int = 20,
        max_windows: int = 4096,
        start_method: str = "forkserver",
        worker_niceness: int = worker.WORKER_NICENESS,
        write_batch_size: int = 500,
        flush_interval: float = 0.25,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.task_rows = task_rows
        self.task_linger = task_linger
        self.worker_niceness = worker_niceness
        self.min_explanations = min_explanations
        self.write_batch_size = write_batch_size
        self.flush_interval = flush_interval
        self.capacity = settings.queue_size
        self._baselines = baselines
        self._store = store
        self._store_url = _shared_url(store)  # None: the collector writes
        self._hand_over = hasattr(store, "flush") and hasattr(store, "pending")  # a StoreWriter
        self._recent_rows = recent_rows
        self.load_errors: dict[str, str] = {}
        self._models: dict[str, _Model] = {}
        shap_missing = importlib.util.find_spec("shap") is None
        for name, model_settings in models.items():
            if model_settings.model_file is None:
                continue
            state = self._prepare(name, model_settings, shap_missing)
            self._models[name] = state
            if state.error:
                self.load_errors[name] = state.error
                log.error("explanations disabled for model %s: %s", name, state.error)
        self.attributions = WindowAttributions(max_windows)
        self._lock = threading.Condition()
        self._queues: dict[str, deque[_Chunk]] = {name: deque() for name in self._models}
        self._queued_rows: dict[str, int] = dict.fromkeys(self._models, 0)
        self._flushing = 0  # flush() calls waiting: queued rows go without lingering
        self._order: deque[str] = deque(self._queues)
        self._depth = 0
        self._in_flight = 0
        self._max_in_flight = 2 * settings.workers
        self._closing = False
        self._drain_deadline = float("inf")
        self._unwritten = 0
        self._done: deque[tuple[_Task, Future | None]] = deque()
        self._done_ready = threading.Event()
        metrics.explain_queue_capacity.set(self.capacity)
        metrics.explain_queue_depth.set(0)
        specs = [m.spec for m in self._models.values() if m.spec is not None]
        self._context = _context(start_method)
        self._specs = specs
        # Created by the dispatcher thread: starting the pool's server process imports
        # shap (seconds), which must not hold up the daemon's start.
        self._pool: ProcessPoolExecutor | None = None
        self._pool_ready = threading.Event()
        self._warmup: list[Future] = []
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="driftd-explain-dispatch", daemon=True)
        self._collector = threading.Thread(target=self._collect_loop, name="driftd-explain-collect", daemon=True)
        self._dispatcher.start()
        self._collector.start()

    # -- set-up ------------------------------------------------------------------------

    def _baseline(self, model: str, version: str | None = None) -> Any:
        source = self._baselines
        if source is None:
            return None
        if callable(source) and not isinstance(source, Mapping):
            return source(model, version) if version is not None else None
        if version is not None and (model, version) in source:
            return source[(model, version)]
        return source.get(model)

    def _start_baseline(self, name: str, settings: ModelSettings) -> Any:
        """A baseline for set-up (background rows, feature names) before any version is seen."""
        baseline = self._baseline(name)
        if baseline is None and settings.baseline is not None:
            from monitor.baseline import BaselineError, load_baseline

            try:
                baseline = load_baseline(settings.baseline)
            except BaselineError as exc:
                log.warning("model %s: %s", name, exc)
        return baseline

    def _prepare(self, name: str, settings: ModelSettings, shap_missing: bool) -> _Model:
        policy = SamplingPolicy(
            base_rate=self.settings.base_rate,
            drifted_window_rate=self.settings.drifted_window_rate,
            near_threshold_band=self.settings.near_threshold_band if settings.task == "binary" else 0.0,
            decision_threshold=settings.decision_threshold,
        )
        bucket = TokenBucket(self.settings.max_per_second, clock=self.clock)
        recent = RecentRows(self._recent_rows) if self.settings.explain_wrong else None
        state = _Model(name, policy, bucket, recent, None)
        if shap_missing:
            state.error = "the optional 'shap' package is not installed: pip install 'driftd[explain]'"
            return state
        trusted = tuple(getattr(settings, "skops_trusted_types", ()) or ())
        try:
            loaded = load_model(
                settings.model_file, name=name, sha256=settings.model_sha256,
                trust_pickle=settings.trust_pickle, trusted_types=trusted,
            )
            baseline = self._start_baseline(name, settings)
            names = loaded.feature_names
            if names is None:
                if baseline is None:
                    raise ModelLoadError(name, settings.model_file, "the file does not name its input "
                                         "features and the model has no baseline to take them from")
                names = list(baseline.features)
            if loaded.n_features is not None and loaded.n_features != len(names):
                raise ModelLoadError(name, settings.model_file, f"the model takes {loaded.n_features} "
                                     f"inputs but {len(names)} feature names are known: {names}")
            encoder = FeatureEncoder(names, loaded.categories)
            background = None
            if not loaded.tree:
                rows = getattr(baseline, "reference_rows", None) or {}
                if not rows:
                    raise ModelLoadError(name, settings.model_file, "not a tree model, so the permutation "
                                         "explainer needs the baseline's reference rows as background")
                background = encoder.from_frame(pd.DataFrame(rows))
        except ExplainError as exc:
            state.error = str(exc)
            return state
        state.spec = worker.WorkerModel(
            name=name, path=str(settings.model_file), sha256=loaded.sha256,
            trust_pickle=settings.trust_pickle, trusted_types=trusted,
            background=background, encoder=encoder,
        )
        return state

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self.settings.workers, mp_context=self._context,
            initializer=worker.initialize, initargs=(self._specs, self.worker_niceness, self._store_url),
        )
        # Start the workers (and load the models) now, not on the first task.
        self._warmup = [pool.submit(worker.ping) for _ in range(self.settings.workers)]
        return pool

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until the workers have started and loaded their models; False on timeout."""
        deadline = time.monotonic() + timeout
        if not self._pool_ready.wait(timeout):
            return False
        done, not_done = futures_wait(self._warmup, max(0.0, deadline - time.monotonic()))
        return not not_done

    # -- the ingest side: never blocks ---------------------------------------------------

    @property
    def models(self) -> list[str]:
        """Models this service explains (loaded successfully)."""
        return [name for name, state in self._models.items() if state.error is None]

    @property
    def depth(self) -> int:
        """Rows admitted and not yet explained."""
        return self._depth

    def offer(self, batch: PredictionBatch, window_starts: np.ndarray, drifted: bool = False) -> int:
        """Pick rows of ``batch`` to explain and queue them; returns how many were queued.

        Parameters
        ----------
        batch
            Predictions of one model version, as decoded by the consumer.
        window_starts
            Event-time window start (epoch seconds) of each row.
        drifted
            Whether the model's latest closed window drifted (raises the sampling
            rate to ``explain.drifted_window_rate``).
        """
        state = self._models.get(batch.model)
        if state is None or self._closing or len(batch) == 0:
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
        """Explain predictions whose label showed them wrong; returns how many were queued.

        The rows come from the recent-rows cache (the last ``recent_rows`` predictions
        offered per model); predictions already explained are not explained again,
        and ones no longer cached are counted as dropped (``not_cached``) when the
        model is named.
        """
        if not self.settings.explain_wrong or self._closing or not prediction_ids:
            return 0
        ids = [str(p) for p in prediction_ids]
        hashes = id_hashes(ids)
        queued = 0
        names = [model] if model is not None else list(self._models)
        for name in names:
            state = self._models.get(name)
            if state is None or state.recent is None:
                continue
            groups, _, found = state.recent.find(name, ids, hashes)
            if model is not None and found < len(set(ids)):
                self._drop(name, "not_cached", len(set(ids)) - found)
            for batch, window_starts, entry, rows in groups:
                codes = np.full(len(batch), WRONG, dtype=np.int8)
                keys = sampling_keys(id_hashes(batch.prediction_ids))
                admitted = self._admit(state, batch, window_starts, codes, keys)
                state.recent.mark_explained(entry, rows[admitted])
                queued += len(admitted)
        return queued

    def _admit(
        self, state: _Model, batch: PredictionBatch, window_starts: np.ndarray,
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
            self._drop(state.name, "model_unavailable", picked)
            return none
        granted = state.bucket.take(picked)
        with self._lock:
            take = min(granted, max(0, self.capacity - self._depth))
            self._depth += take
        self._drop(state.name, "budget", picked - granted)
        self._drop(state.name, "queue_full", granted - take)
        if take == 0:
            return none
        if take < picked and keys is None:
            keys = sampling_keys(id_hashes(batch.prediction_ids))
        rows = most_important(codes, keys, take) if take < picked else np.flatnonzero(codes)
        chunk = _Chunk(batch.take(rows), window_starts[rows], codes[rows], time.monotonic())
        with self._lock:
            queued = self._queued_rows[state.name]
            self._queues[state.name].append(chunk)
            self._queued_rows[state.name] = queued + take
            # Wake the dispatcher when there is a new oldest row (it then sleeps until
            # that row's linger ends) or a full task; not for every batch.
            if queued == 0 or (queued < self.task_rows <= queued + take):
                self._lock.notify_all()
        self.metrics.explain_queue_depth.set(self._depth)
        return rows

    def _drop(self, model: str, reason: str, n: int) -> None:
        if n > 0:
            self.metrics.explain_dropped.labels(model=model, reason=reason).inc(n)

    # -- dispatcher thread -------------------------------------------------------------

    def _next_task(self, now: float) -> tuple[_Task | None, float]:
        """Up to ``task_rows`` queued rows of the next model (round-robin) that has a
        full task, rows that lingered ``task_linger``, or must go now (flush, close);
        else None and the time (monotonic) the first queued row's linger ends."""
        wake = float("inf")
        hurry = self._closing or self._flushing > 0
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
            chunks: list[_Chunk] = []
            rows = 0
            while queue and rows < self.task_rows:
                chunk = queue.popleft()
                if rows + len(chunk) > self.task_rows:
                    chunk, rest = chunk.split(self.task_rows - rows)
                    queue.appendleft(rest)
                chunks.append(chunk)
                rows += len(chunk)
            self._queued_rows[name] -= rows
            return _Task(name, chunks, rows), wake
        return None, wake

    def _dispatch_loop(self) -> None:
        if self._specs:
            try:
                self._pool = self._new_pool()
            except Exception:  # noqa: BLE001 - tasks then fail and are counted
                log.exception("cannot start the explanation worker pool")
        self._pool_ready.set()
        while True:
            with self._lock:
                while True:
                    task, wake = None, float("inf")
                    if self._in_flight < self._max_in_flight:
                        task, wake = self._next_task(time.monotonic())
                    if task is not None:
                        break
                    if self._closing:
                        queued = any(self._queues.values())
                        if not queued or time.monotonic() >= self._drain_deadline:
                            return  # close() counts what is left
                    self._lock.wait(min(0.5, max(0.001, wake - time.monotonic())))
                self._in_flight += 1
            self._submit(task)

    def _submit(self, task: _Task) -> None:
        future: Future | None = None
        try:
            if self._pool is None:
                raise ExplainError("no worker pool")
            chunks = [(chunk.batch, chunk.window_starts, chunk.reasons) for chunk in task.chunks]
            future = self._pool.submit(worker.explain, task.model, chunks, self._store_url is not None)
        except BrokenProcessPool:
            log.error("explanation worker pool broke; starting a new one")
            self._pool = self._new_pool()
        except Exception:  # noqa: BLE001 - counted, logged, never fatal
            log.exception("cannot submit explanation task for model %s", task.model)
        if future is None:
            self._finished(task, None)
        else:
            future.add_done_callback(lambda f, t=task: self._finished(t, f))

    def _finished(self, task: _Task, future: Future | None) -> None:
        self._done.append((task, future))
        self._done_ready.set()

    # -- collector thread ----------------------------------------------------------------

    def _collect_loop(self) -> None:
        pending: list[dict[str, Any]] = []
        last_flush = time.monotonic()
        while True:
            self._done_ready.wait(self.flush_interval)
            self._done_ready.clear()
            while self._done:
                task, future = self._done.popleft()
                pending.extend(self._results(task, future))
                self._unwritten = len(pending)
                with self._lock:
                    self._in_flight -= 1
                    self._depth -= task.rows
                    self._lock.notify_all()
                self.metrics.explain_queue_depth.set(self._depth)
                if len(pending) >= self.write_batch_size:
                    self._write(pending)
                    pending, last_flush = [], time.monotonic()
                    self._unwritten = 0
            if pending and (time.monotonic() - last_flush >= self.flush_interval or self._closing):
                self._write(pending)
                pending, last_flush = [], time.monotonic()
                self._unwritten = 0
            with self._lock:
                finished = self._closing and self._in_flight == 0 and not self._done and not self._dispatcher.is_alive()
            if finished and not pending:
                return

    def _results(self, task: _Task, future: Future | None) -> list[dict[str, Any]]:
        """Account for a finished task; returns the rows the collector must write (if any)."""
        if future is None or future.cancelled():
            self._drop(task.model, "shutdown" if self._closing else "worker_error", task.rows)
            return []
        error = future.exception()
        if error is not None:
            reason = "additivity" if isinstance(error, AdditivityError) else "worker_error"
            if isinstance(error, BrokenProcessPool):
                reason = "shutdown" if self._closing else "worker_error"
            log.warning("explaining %d rows of model %s failed: %s", task.rows, task.model, error)
            self._drop(task.model, reason, task.rows)
            return []
        result: worker.WorkerResult = future.result()
        for window in result.windows:
            self.attributions.add_sums(task.model, window.version, window.segment, window.window_start,
                                       result.feature_names, window.abs_shap, window.count)
        if result.explanations is not None:
            return result.explanations
        if result.store_error is not None or result.stored_at is None:
            log.warning("cannot store %d explanations of model %s: %s", task.rows, task.model, result.store_error)
            self.metrics.store_errors.labels(operation="add_explanations").inc()
            self._drop(task.model, "store_error", task.rows)
            return []
        event_times = np.concatenate([chunk.batch.event_times for chunk in task.chunks])
        observe_many(self.metrics.explain_latency, np.maximum(0.0, result.stored_at - event_times))
        self.metrics.explanations.labels(model=task.model).inc(task.rows)
        return []

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            self._store.add_explanations(rows)
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop explaining
            log.warning("cannot store %d explanations: %s", len(rows), exc)
            self.metrics.store_errors.labels(operation="add_explanations").inc()
            for model in {row["model"] for row in rows}:
                self._drop(model, "store_error", sum(1 for row in rows if row["model"] == model))
            return
        now = self.clock()
        observe_many(self.metrics.explain_latency, np.maximum(0.0, now - np.array([row["event_time"] for row in rows])))
        for model in {row["model"] for row in rows}:
            self.metrics.explanations.labels(model=model).inc(sum(1 for row in rows if row["model"] == model))

    # -- attribution drift -----------------------------------------------------------------

    def attribution(self, key: WindowKey, window_start: float) -> AttributionSummary | None:
        """Attribution drift of one window from the explanations computed so far.

        None when the window has no explanations yet or the baseline has no global
        importances (build it with a model file). Explanations arrive after a window
        closes, so call it again later (see :meth:`changed_attributions`).
        """
        found = self.attributions.mean(key, window_start)
        if found is None:
            return None
        baseline = self._baseline(key.model, key.version)
        importances = getattr(baseline, "importances", None) or {}
        if not importances:
            return None
        mean, count = found
        result = attribution_drift(
            importances, mean, count, self.settings.attribution_threshold, self.min_explanations
        )
        return AttributionSummary(
            ndcg=result.ndcg, drifted=result.drifted, threshold=result.threshold,
            n_explanations=result.n_explanations, mean_abs_shap=result.mean_abs_shap,
            relative_change=result.relative_change,
        )

    def changed_attributions(self) -> list[tuple[WindowKey, float, AttributionSummary]]:
        """Attribution of every window that gained explanations since the last call."""
        changed = []
        for key, window_start in self.attributions.take_changed():
            summary = self.attribution(key, window_start)
            if summary is not None:
                changed.append((key, window_start, summary))
        return changed

    # -- shutdown --------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every admitted row is explained and written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flushing += 1
            self._lock.notify_all()
        try:
            while time.monotonic() < deadline:
                with self._lock:
                    # depth reaches 0 only after the collector took the last result into
                    # its unwritten rows, so both being 0 means everything was written.
                    idle = self._depth == 0 and self._unwritten == 0
                if idle:
                    if self._hand_over and self._store_url is None:
                        return bool(self._store.flush(max(0.0, deadline - time.monotonic())))
                    return True
                time.sleep(0.01)
            return False
        finally:
            with self._lock:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting work, finish what is queued (up to ``timeout``), stop the workers.

        Rows still queued at the deadline are counted as dropped (``shutdown``). Worker
        processes are joined; ones still busy at the deadline are terminated, so no
        process outlives the service.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closing = True
            self._drain_deadline = deadline
            self._lock.notify_all()
        self._dispatcher.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for name, queue in self._queues.items():
                left = sum(len(chunk) for chunk in queue)
                queue.clear()
                self._queued_rows[name] = 0
                self._depth -= left
                self._drop(name, "shutdown", left)
            self._lock.notify_all()
        pool = self._pool
        if pool is not None:
            while time.monotonic() < deadline:
                with self._lock:
                    if self._in_flight == 0:
                        break
                time.sleep(0.02)
            self._stop_pool(pool, deadline)
            self._pool = None
        self._dispatcher.join(5)
        self._done_ready.set()
        self._collector.join(max(1.0, deadline - time.monotonic()))
        self.metrics.explain_queue_depth.set(max(0, self._depth))

    @staticmethod
    def _stop_pool(pool: ProcessPoolExecutor, deadline: float) -> None:
        # ProcessPoolExecutor has no public way to stop a busy worker (before 3.14),
        # hence the private attributes: the processes are joined, and terminated
        # when they are still busy at the deadline.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(5)
        if manager is not None:
            manager.join(5)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for tests and diagnostics)."""
        processes = (getattr(self._pool, "_processes", None) or {}) if self._pool else {}
        return [p.pid for p in processes.values() if p.pid is not None]

    def __enter__(self) -> ExplainService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _context(start_method: str) -> multiprocessing.context.BaseContext:
    """The multiprocessing context for the pool.

    ``forkserver`` (the default): a single-threaded server process, started once per
    daemon, imports shap and the model libraries, and every worker is forked from
    it, so a worker starts in milliseconds instead of re-importing shap (seconds),
    and restarting a broken pool is cheap. ``spawn`` starts each worker from
    scratch. ``fork`` is refused: it would copy the daemon's threads' locks.
    """
    if start_method == "fork":
        raise ExplainError("start_method 'fork' is unsafe in a threaded daemon; use forkserver or spawn")
    if start_method not in multiprocessing.get_all_start_methods():
        raise ExplainError(f"start_method {start_method!r} is not available here; "
                           f"allowed: {[m for m in multiprocessing.get_all_start_methods() if m != 'fork']}")
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # monitor.store: the workers open their own store connection (SQLAlchemy).
        preload = ["explainers.worker", "monitor.store"] + [
            name for name in ("shap", "xgboost", "lightgbm", "sklearn") if importlib.util.find_spec(name)
        ]
        # Only takes effect before the server starts; the same list every time.
        context.set_forkserver_preload(preload)
    return context


def _shared_url(store: Any) -> str | None:
    """The URL worker processes can open ``store`` with, or None (in-memory SQLite,
    or not a :class:`~monitor.store.Store` / ``StoreWriter``)."""
    engine = getattr(getattr(store, "store", store), "engine", None)
    url = getattr(engine, "url", None)
    if url is None or not hasattr(url, "render_as_string"):
        return None
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)
