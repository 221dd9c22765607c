"""Where explanation results go: the store, the counters, and the |SHAP| sums per window.

:class:`ResultSink` is the *collector* of the in-process pool: a thread of the
daemon that takes each finished task, adds its |SHAP| sums per window to the
running sums for attribution drift, observes the latency from event time to the
committed write, and counts explanations and drops — O(windows × features) per
task, not O(rows), so that explaining competes as little as possible with ingest
for the daemon's GIL. Workers write the explanations to the store themselves when
they can open it; otherwise (in-memory SQLite, another store object) they send the
rows back and the collector writes them in batches (``write_batch_size`` rows or
``flush_interval`` seconds). A store that refuses or cannot take the rows costs the
rows (``store_error``), never the daemon.

:class:`AttributionDrift` turns the running sums of a window into its
:class:`~monitor.results.AttributionSummary`; in ``explain.mode: kafka`` the sums
come from the store instead (:mod:`explainers.remote_sums`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from detectors.attribution import attribution_drift
from explainers import worker
from explainers.admission import Admission, Task
from explainers.errors import AdditivityError
from explainers.window_attribution import WindowAttributions
from monitor.metrics import PipelineMetrics, observe_many
from monitor.results import AttributionSummary, WindowKey

__all__ = ["AttributionDrift", "ResultSink"]

log = logging.getLogger(__name__)


class AttributionDrift:
    """Attribution drift of windows from their running |SHAP| sums.

    Parameters
    ----------
    attributions
        The running sums per window.
    baseline
        ``(model, version) -> Baseline | None``; its ``importances`` are compared with.
    threshold, min_explanations
        ``explain.attribution_threshold``, and explanations a window needs before drift is decided.
    """

    def __init__(
        self, attributions: WindowAttributions, baseline: Callable[[str, str], Any],
        threshold: float, min_explanations: int,
    ) -> None:
        self.attributions = attributions
        self.baseline = baseline
        self.threshold = threshold
        self.min_explanations = min_explanations

    def attribution(self, key: WindowKey, window_start: float) -> AttributionSummary | None:
        """Attribution drift of one window from the explanations computed so far.

        None when the window has no explanations yet or the baseline has no global
        importances (build it with a model file).
        """
        found = self.attributions.mean(key, window_start)
        if found is None:
            return None
        importances = getattr(self.baseline(key.model, key.version), "importances", None) or {}
        if not importances:
            return None
        mean, count = found
        result = attribution_drift(importances, mean, count, self.threshold, self.min_explanations)
        return AttributionSummary(
            ndcg=result.ndcg, drifted=result.drifted, threshold=result.threshold,
            n_explanations=result.n_explanations, mean_abs_shap=result.mean_abs_shap,
            relative_change=result.relative_change,
        )

    def changed(self) -> list[tuple[WindowKey, float, AttributionSummary]]:
        """Attribution of every window that gained explanations since the last call."""
        changed = []
        for key, window_start in self.attributions.take_changed():
            summary = self.attribution(key, window_start)
            if summary is not None:
                changed.append((key, window_start, summary))
        return changed


class ResultSink:
    """The collector thread of the in-process pool (see the module docstring).

    Parameters
    ----------
    admission
        Told when a task is finished (its rows leave the queue depth).
    attributions
        Running |SHAP| sums per window, added to from every task.
    store
        Where rows sent back by the workers are written (``add_explanations``).
    metrics, clock
        Counters to update; wall clock (epoch seconds) for the latency of rows written here.
    """

    def __init__(
        self, admission: Admission, attributions: WindowAttributions, store: Any,
        metrics: PipelineMetrics, clock: Callable[[], float],
        write_batch_size: int = 500, flush_interval: float = 0.25,
    ) -> None:
        self.admission = admission
        self.attributions = attributions
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.write_batch_size = write_batch_size
        self.flush_interval = flush_interval
        self.unwritten = 0  # rows taken from results and not yet written
        self._done: deque[tuple[Task, Future | None]] = deque()
        self._done_ready = threading.Event()
        self._producer_alive: Callable[[], bool] = lambda: False
        self._thread = threading.Thread(target=self._collect_loop, name="driftd-explain-collect", daemon=True)

    def start(self, producer_alive: Callable[[], bool]) -> None:
        """Start collecting; the thread ends once closing, with nothing in flight and
        ``producer_alive()`` (the dispatcher) false."""
        self._producer_alive = producer_alive
        self._thread.start()

    def finished(self, task: Task, future: Future | None) -> None:
        """A task is done (``future`` None: it never reached a worker). Any thread."""
        self._done.append((task, future))
        self._done_ready.set()

    @property
    def idle(self) -> bool:
        return self.unwritten == 0

    def join(self, timeout: float) -> None:
        self._done_ready.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _collect_loop(self) -> None:
        pending: list[dict[str, Any]] = []
        last_flush = time.monotonic()
        admission = self.admission
        while True:
            self._done_ready.wait(self.flush_interval)
            self._done_ready.clear()
            while self._done:
                task, future = self._done.popleft()
                pending.extend(self._results(task, future))
                self.unwritten = len(pending)
                admission.finish(task)
                if len(pending) >= self.write_batch_size:
                    self._write(pending)
                    pending, last_flush = [], time.monotonic()
                    self.unwritten = 0
            if pending and (time.monotonic() - last_flush >= self.flush_interval or admission.closing):
                self._write(pending)
                pending, last_flush = [], time.monotonic()
                self.unwritten = 0
            with admission.lock:
                finished = admission.closing and admission.in_flight == 0 and not self._done
            if finished and not pending and not self._producer_alive():
                return

    def _results(self, task: Task, future: Future | None) -> list[dict[str, Any]]:
        """Account for a finished task; returns the rows the collector must write (if any)."""
        drop = self.admission.drop
        closing = self.admission.closing
        if future is None or future.cancelled():
            drop(task.model, "shutdown" if closing else "worker_error", task.rows)
            return []
        error = future.exception()
        if error is not None:
            reason = "additivity" if isinstance(error, AdditivityError) else "worker_error"
            if isinstance(error, BrokenProcessPool):
                reason = "shutdown" if closing else "worker_error"
            log.warning("explaining %d rows of model %s failed: %s", task.rows, task.model, error)
            drop(task.model, reason, task.rows)
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
            drop(task.model, "store_error", task.rows)
            return []
        observe_many(self.metrics.explain_latency, np.maximum(0.0, result.stored_at - task.event_times()))
        self.metrics.explanations.labels(model=task.model).inc(task.rows)
        return []

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            self.store.add_explanations(rows)
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop explaining
            log.warning("cannot store %d explanations: %s", len(rows), exc)
            self.metrics.store_errors.labels(operation="add_explanations").inc()
            for model in {row["model"] for row in rows}:
                self.admission.drop(model, "store_error", sum(1 for row in rows if row["model"] == model))
            return
        now = self.clock()
        observe_many(self.metrics.explain_latency, np.maximum(0.0, now - np.array([row["event_time"] for row in rows])))
        for model in {row["model"] for row in rows}:
            self.metrics.explanations.labels(model=model).inc(sum(1 for row in rows if row["model"] == model))
