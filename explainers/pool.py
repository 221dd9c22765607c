"""The in-process executor of explanation tasks: a forkserver process pool.

:class:`WorkerPool` runs the *dispatcher* thread: it takes tasks from the
:class:`~explainers.admission.Admission` queue and submits them to a
``ProcessPoolExecutor`` (``forkserver`` start method; each worker loads every model
once in its initializer), with at most two tasks per worker in flight. The worker
(:mod:`explainers.worker`) encodes the rows, explains them, checks additivity,
**writes the explanations to the store itself** (one transaction per task, through
its own connection) and returns only |SHAP| sums per window, the commit time and any
store error; the pool's own thread hands that to the
:class:`~explainers.sink.ResultSink`.

A worker killed from outside (the OOM killer) breaks the pool: the task that finds
it broken is counted (``worker_error``) and a new pool is started for the next.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool

from explainers import worker
from explainers.admission import Admission, Task
from explainers.errors import ExplainError
from explainers.sink import ResultSink

__all__ = ["WorkerPool", "pool_context"]

log = logging.getLogger(__name__)


class WorkerPool:
    """Worker processes fed by a dispatcher thread.

    Parameters
    ----------
    admission, sink
        Where tasks come from, and where finished tasks go.
    specs
        The models every worker loads.
    workers
        Worker processes (``explain.workers``), one core each.
    store_url
        The URL workers open the store with, or None (they send the rows back).
    start_method, niceness
        See :func:`pool_context`; the nice value workers add to themselves.
    """

    def __init__(
        self, admission: Admission, sink: ResultSink, specs: Sequence[worker.WorkerModel], workers: int,
        store_url: str | None, start_method: str = "forkserver", niceness: int = worker.WORKER_NICENESS,
    ) -> None:
        self.admission = admission
        self.sink = sink
        self.specs = list(specs)
        self.workers = workers
        self.store_url = store_url
        self.niceness = niceness
        self.max_in_flight = 2 * workers
        self._context = pool_context(start_method)
        # Created by the dispatcher thread: starting the pool's server process imports
        # shap (seconds), which must not hold up the daemon's start.
        self._pool: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._warmup: list[Future] = []
        self._thread = threading.Thread(target=self._dispatch_loop, name="driftd-explain-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the dispatcher thread still runs."""
        return self._thread.is_alive()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self._context,
            initializer=worker.initialize, initargs=(self.specs, self.niceness, self.store_url),
        )
        # Start the workers (and load the models) now, not on the first task.
        self._warmup = [pool.submit(worker.ping) for _ in range(self.workers)]
        return pool

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until the workers have started and loaded their models; False on timeout."""
        deadline = time.monotonic() + timeout
        if not self._ready.wait(timeout):
            return False
        _, not_done = futures_wait(self._warmup, max(0.0, deadline - time.monotonic()))
        return not not_done

    def _dispatch_loop(self) -> None:
        if self.specs:
            try:
                self._pool = self._new_pool()
            except Exception:  # noqa: BLE001 - tasks then fail and are counted
                log.exception("cannot start the explanation worker pool")
        self._ready.set()
        while True:
            task = self.admission.wait_task(self.max_in_flight)
            if task is None:
                return
            self._submit(task)

    def _submit(self, task: Task) -> None:
        future: Future | None = None
        try:
            if self._pool is None:
                raise ExplainError("no worker pool")
            chunks = [chunk.as_tuple() for chunk in task.chunks]
            future = self._pool.submit(worker.explain, task.model, chunks, self.store_url is not None)
        except BrokenProcessPool:
            log.error("explanation worker pool broke; starting a new one")
            self._pool = self._new_pool()
        except Exception:  # noqa: BLE001 - counted, logged, never fatal
            log.exception("cannot submit explanation task for model %s", task.model)
        if future is None:
            self.sink.finished(task, None)
        else:
            future.add_done_callback(lambda f, t=task: self.sink.finished(t, f))

    def join_dispatcher(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(max(0.0, timeout))

    def stop(self, deadline: float) -> None:
        """Wait for tasks in flight until ``deadline`` (monotonic), then stop the workers.

        Worker processes are joined; ones still busy at the deadline are terminated,
        so no process outlives the pool.
        """
        pool = self._pool
        if pool is None:
            return
        self.admission.wait_in_flight(deadline)
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
        self._pool = None

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (for tests and diagnostics)."""
        processes = (getattr(self._pool, "_processes", None) or {}) if self._pool else {}
        return [p.pid for p in processes.values() if p.pid is not None]


def pool_context(start_method: str) -> multiprocessing.context.BaseContext:
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
