"""The explanation service the daemon uses: admission, an executor, and a sink, put together.

SHAP never runs on the ingest path. The consumer loop calls :meth:`ExplainService.offer`
(and :meth:`~ExplainService.offer_wrong` for predictions labels showed wrong); both
only sample, budget and queue (:mod:`explainers.admission`) and never wait. What
executes the queued tasks depends on ``explain.mode``:

``pool`` (the default, one process)
    :mod:`explainers.pool`: a forkserver process pool in the daemon; the workers
    write the explanations to the store and send |SHAP| sums per window back to the
    collector (:mod:`explainers.sink`), which keeps them for attribution drift.
``kafka`` (scale-out)
    :mod:`explainers.publisher`: tasks are published to ``kafka.explain_topic`` and
    explained by ``driftd explain-worker`` processes on any machine
    (:mod:`explainers.kafka_worker`), which write the explanations *and* the |SHAP|
    sums per window to the shared store in one transaction per task;
    :mod:`explainers.remote_sums` reads the sums of the windows the daemon reports on.

Drops are counted in ``driftd_explain_dropped_total{model,reason}``:

``budget``            the model's explanations/s budget (``explain.max_per_second``) is spent
``queue_full``        the queue holds ``explain.queue_size`` rows (queued, being explained or published)
``model_unavailable`` the model file could not be loaded (see the startup log)
``not_cached``        a prediction found wrong is no longer in the recent-rows cache
``worker_error``      the worker failed (the error is logged)
``additivity``        base value + Σ SHAP did not match the model output
``store_error``       the store refused or could not take the rows
``publish_error``     (kafka) the broker did not take the task
``shutdown``          still queued when :meth:`close` gave up waiting

Queue depth counts rows admitted and not yet explained (pool) or not yet taken by the
broker (kafka).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from explainers import worker
from explainers.admission import Admission
from explainers.errors import ExplainError
from explainers.models import BaselineSource, baseline_for, prepare_models
from explainers.pool import WorkerPool
from explainers.sink import AttributionDrift, ResultSink
from explainers.window_attribution import WindowAttributions
from monitor.batch import PredictionBatch
from monitor.config import ExplainSettings, KafkaSettings, ModelSettings
from monitor.metrics import PipelineMetrics
from monitor.results import AttributionSummary, WindowKey

__all__ = ["ExplainService", "shared_url"]


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
    kafka
        The ``kafka`` section; needed with ``explain.mode: kafka``.
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
        ``forkserver`` (default) or ``spawn``; see :func:`explainers.pool.pool_context`.
        Never ``fork``: the daemon runs threads, which ``fork`` would copy in an
        undefined state.
    sums_interval
        (kafka) Seconds between reads of the |SHAP| sums from the store.

    Raises
    ------
    ExplainError
        Never for a bad model file: that model is logged, recorded in
        :attr:`load_errors` and skipped, and the daemon runs on. For
        ``explain.mode: kafka`` without Kafka settings or with a store the worker
        processes cannot open.
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
        kafka: KafkaSettings | None = None,
        task_rows: int = 256,
        task_linger: float = 0.25,
        recent_rows: int = 10_000,
        min_explanations: int = 20,
        max_windows: int = 4096,
        start_method: str = "forkserver",
        worker_niceness: int = worker.WORKER_NICENESS,
        write_batch_size: int = 500,
        flush_interval: float = 0.25,
        sums_interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.mode = getattr(settings, "mode", "pool")
        self._baselines = baselines
        self._store = store
        self._store_url = shared_url(store)  # None: the collector writes
        self._hand_over = hasattr(store, "flush") and hasattr(store, "pending")  # a StoreWriter
        remote = self.mode == "kafka"
        if remote and kafka is None:
            raise ExplainError("explain.mode 'kafka' needs the kafka settings (kafka.explain_topic)")
        if remote and self._store_url is None:
            raise ExplainError(f"explain.mode 'kafka': store {store!r} cannot be opened by explain-worker "
                               "processes; set store.url to a file or server database, not in-memory SQLite")
        states = prepare_models(settings, models, baselines, clock, recent_rows, load=not remote)
        self._states = states
        self.load_errors: dict[str, str] = {n: s.error for n, s in states.items() if s.error}
        self.attributions = WindowAttributions(max_windows)
        self._drift = AttributionDrift(self.attributions, lambda m, v: self._baseline(m, v),
                                       settings.attribution_threshold, min_explanations)
        self.admission = Admission(states, settings.queue_size, metrics, task_rows, task_linger,
                                   settings.explain_wrong)
        self.capacity = settings.queue_size
        self._pool: WorkerPool | None = None
        self._sink: ResultSink | None = None
        self._publisher: Any = None
        self._sums: Any = None
        if remote:
            from explainers.publisher import TaskPublisher
            from explainers.remote_sums import StoreSums

            self._publisher = TaskPublisher(self.admission, kafka, metrics)
            self._sums = StoreSums(getattr(store, "store", store), self.attributions, metrics, sums_interval)
            self._publisher.start()
            self._sums.start()
            return
        self._sink = ResultSink(self.admission, self.attributions, store, metrics, clock,
                                write_batch_size, flush_interval)
        specs = [s.spec for s in states.values() if s.spec is not None]
        self._pool = WorkerPool(self.admission, self._sink, specs, settings.workers, self._store_url,
                                start_method, worker_niceness)
        self._pool.start()
        self._sink.start(lambda: self._pool is not None and self._pool.alive)

    def _baseline(self, model: str, version: str | None = None) -> Any:
        return baseline_for(self._baselines, model, version)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until the workers have loaded their models (pool) or the producer has
        connected (kafka); False on timeout."""
        if self._publisher is not None:
            return bool(self._publisher.wait_ready(timeout))
        return self._pool.wait_ready(timeout)

    # -- the ingest side: never blocks ---------------------------------------------------

    @property
    def models(self) -> list[str]:
        """Models this service explains (loaded successfully)."""
        return [name for name, state in self._states.items() if state.error is None]

    @property
    def depth(self) -> int:
        """Rows admitted and not yet explained (or, in kafka mode, published)."""
        return self.admission.depth

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
        return self.admission.offer(batch, window_starts, drifted)

    def offer_wrong(self, prediction_ids: Sequence[str], model: str | None = None) -> int:
        """Explain predictions whose label showed them wrong; returns how many were queued.

        The rows come from the recent-rows cache (the last ``recent_rows`` predictions
        offered per model); predictions already explained are not explained again,
        and ones no longer cached are counted as dropped (``not_cached``) when the
        model is named.
        """
        return self.admission.offer_wrong(prediction_ids, model)

    # -- attribution drift -----------------------------------------------------------------

    def attribution(self, key: WindowKey, window_start: float) -> AttributionSummary | None:
        """Attribution drift of one window from the explanations computed so far.

        None when the window has no explanations yet or the baseline has no global
        importances (build it with a model file). Explanations arrive after a window
        closes, so call it again later (see :meth:`changed_attributions`). In kafka
        mode asking for a window makes the service read its sums from the store.
        """
        if self._sums is not None:
            self._sums.want(key, window_start)
        return self._drift.attribution(key, window_start)

    def changed_attributions(self) -> list[tuple[WindowKey, float, AttributionSummary]]:
        """Attribution of every window that gained explanations since the last call."""
        return self._drift.changed()

    def refresh_attributions(self) -> bool:
        """(kafka) Read the wanted windows' sums from the store now; False on a store error."""
        return True if self._sums is None else bool(self._sums.refresh())

    # -- shutdown --------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every admitted row is explained and written (pool) or taken by the
        broker (kafka); False on timeout."""
        deadline = time.monotonic() + timeout
        with self.admission.hurry():
            while time.monotonic() < deadline:
                # depth reaches 0 only after the collector took the last result into
                # its unwritten rows, so both being 0 means everything was written.
                if self.admission.idle and (self._sink is None or self._sink.idle):
                    if self._hand_over and self._store_url is None:
                        return bool(self._store.flush(max(0.0, deadline - time.monotonic())))
                    return True
                time.sleep(0.01)
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting work, finish what is queued (up to ``timeout``), stop the workers.

        Rows still queued at the deadline are counted as dropped (``shutdown``). Worker
        processes are joined; ones still busy at the deadline are terminated, so no
        process outlives the service.
        """
        deadline = time.monotonic() + timeout
        self.admission.start_closing(deadline)
        if self._publisher is not None:
            self._publisher.join(deadline - time.monotonic())
            self.admission.drop_queued()
            self._publisher.stop(deadline)
            self._sums.stop()
            self.metrics.explain_queue_depth.set(max(0, self.admission.depth))
            return
        self._pool.join_dispatcher(deadline - time.monotonic())
        self.admission.drop_queued()
        self._pool.stop(deadline)
        self._pool.join_dispatcher(5)
        self._sink.join(max(1.0, deadline - time.monotonic()))
        self.metrics.explain_queue_depth.set(max(0, self.admission.depth))

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for tests and diagnostics)."""
        return [] if self._pool is None else self._pool.pids

    def __enter__(self) -> ExplainService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shared_url(store: Any) -> str | None:
    """The URL worker processes can open ``store`` with, or None (in-memory SQLite,
    or not a :class:`~monitor.store.Store` / ``StoreWriter``)."""
    engine = getattr(getattr(store, "store", store), "engine", None)
    url = getattr(engine, "url", None)
    if url is None or not hasattr(url, "render_as_string"):
        return None
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)
