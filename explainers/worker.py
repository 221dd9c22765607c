"""What runs inside an explanation worker process.

Each worker loads every model once, in the pool initializer, builds its SHAP
explainer and warms it up (the first call of some explainers compiles code), and
opens its own connection to the store. A task carries a model name and the rows to
explain (:data:`~explainers.rows.Chunk`); the worker encodes them into the model's
input matrix, explains them, writes one ``explanations`` row per prediction to the
store itself, and returns what the daemon needs: |SHAP| sums per window for
attribution drift, the time of the committed write for the latency histogram, and
the store error if the write failed. The per-row work (encoding, building rows,
the insert) thus runs here, outside the daemon's interpreter, instead of competing
with ingest for its GIL.

A model that fails to load in a worker fails its tasks with the load error, which
the service counts.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers.encoding import FeatureEncoder
from explainers.errors import ExplainError
from explainers.rows import Chunk, WindowSum, explanation_rows, window_sums

__all__ = ["WorkerModel", "WorkerResult", "explain", "initialize", "load_explainers", "ping", "run_in_background"]

# Nice value added to worker processes: explanations run on CPU ingest does not need.
WORKER_NICENESS = 19
# Per-process state, set by initialize() in each worker (never in the daemon itself).
_EXPLAINERS: dict[str, tuple[Any, FeatureEncoder] | Exception] = {}
_STORE: Any = None  # this worker's own monitor.store.Store
_STORE_ERROR = "the worker has no store"
_THREAD_LIMIT: Any = None  # kept for the life of the process


@dataclass(frozen=True, slots=True)
class WorkerModel:
    """How a worker loads one model and encodes its inputs (picklable)."""

    name: str
    path: str
    sha256: str | None
    trust_pickle: bool
    trusted_types: tuple[str, ...]
    background: np.ndarray | None
    encoder: FeatureEncoder


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What a task sends back to the daemon: O(windows x features), not O(rows).

    Attributes
    ----------
    rows
        Rows explained.
    feature_names
        Columns of every ``WindowSum.abs_shap``.
    windows
        Sum of |SHAP| per feature per (version, segment, window start).
    duration_s
        Time SHAP took for the task.
    stored_at
        Wall-clock time (epoch seconds) when the rows were committed, or None.
    store_error
        Why the rows could not be written, or None.
    explanations
        The rows themselves, when the task asked for them instead of a write
        (a store the workers cannot open, e.g. in-memory SQLite).
    """

    rows: int
    feature_names: list[str]
    windows: list[WindowSum]
    duration_s: float
    stored_at: float | None = None
    store_error: str | None = None
    explanations: list[dict[str, Any]] | None = None


def initialize(
    models: Sequence[WorkerModel], niceness: int = WORKER_NICENESS, store_url: str | None = None, threads: int = 1
) -> None:
    """Pool initializer: load and warm up every model's explainer, open the store.

    ``threads`` caps the native thread pools (OpenMP, BLAS) of this worker.
    """
    global _STORE, _STORE_ERROR
    # Ctrl-C reaches the whole process group; the daemon decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_in_background(niceness)
    load_explainers(models, threads)
    if store_url is not None:
        try:
            from monitor.store import open_store

            # create=False: the daemon owns the schema; nothing connects until a write.
            _STORE = open_store(store_url, create=False)
        except Exception as exc:  # noqa: BLE001 - every write is then a counted store error
            _STORE_ERROR = f"cannot open the store: {exc}"


def run_in_background(niceness: int) -> None:
    """Lower this process's priority by ``niceness``; with a positive one, SCHED_IDLE too.

    Explanations are best effort: when CPU is short, ingest wins and the bounded
    queue drops (and counts) what the workers cannot keep up with. On Linux a
    background worker is also SCHED_IDLE: it runs only on CPU nothing else wants,
    and the scheduler places the daemon's and the broker's threads as if the core
    were free.
    """
    try:
        if niceness:
            os.nice(niceness)
        if niceness > 0 and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        pass


def load_explainers(models: Sequence[WorkerModel], threads: int = 1) -> dict[str, str]:
    """Load and warm up every model's explainer in this process; returns model -> load error.

    One worker, one core: XGBoost's and LightGBM's SHAP would otherwise start a
    thread per core in every worker and take the cores ingest runs on, so the
    native thread pools are capped at ``threads``. A limit only reaches the
    libraries loaded when it is set, so it is set again once the models are loaded
    (a forkserver started without our preload list imports the model libraries here).
    """
    global _THREAD_LIMIT
    from threadpoolctl import threadpool_limits

    _THREAD_LIMIT = threadpool_limits(threads)
    from explainers.loading import load_model
    from explainers.shap_backend import make_explainer

    errors: dict[str, str] = {}
    for spec in models:
        try:
            loaded = load_model(
                spec.path, name=spec.name, sha256=spec.sha256,
                trust_pickle=spec.trust_pickle, trusted_types=spec.trusted_types,
            )
            explainer = make_explainer(loaded, spec.background)
            _THREAD_LIMIT = threadpool_limits(threads)
            warm = spec.background[:1] if spec.background is not None else np.zeros((1, len(spec.encoder)))
            explainer.explain(warm, check=False)
            _EXPLAINERS[spec.name] = (explainer, spec.encoder)
        except Exception as exc:  # noqa: BLE001 - reported on every task of this model
            _EXPLAINERS[spec.name] = ExplainError(f"model {spec.name!r} unavailable in worker: {exc}")
            errors[spec.name] = str(exc)
    return errors


def ping() -> int:
    """A no-op task: submitting it starts a worker (and runs its initializer)."""
    return os.getpid()


def explain(model: str, chunks: Sequence[Chunk], write: bool = True) -> WorkerResult:
    """Explain the rows of ``chunks`` with ``model``'s explainer (additivity checked).

    With ``write`` the rows go to the worker's store in one transaction; a failed
    write is reported in ``store_error`` (the task itself succeeds: its |SHAP| sums
    still count for attribution drift). Without, they come back in ``explanations``.
    """
    entry = _EXPLAINERS.get(model)
    if entry is None:
        raise ExplainError(f"model {model!r} is not loaded in this worker")
    if isinstance(entry, Exception):
        raise entry
    explainer, encoder = entry
    X = np.vstack([encoder.from_batch(batch) for batch, _, _ in chunks])
    started = time.perf_counter()
    result = explainer.explain(X)
    duration = time.perf_counter() - started
    n = len(X)
    rows = explanation_rows(
        chunks, encoder.feature_names, result.values, result.base_values, result.outputs,
        explainer.label, explainer.background_hash, 1000.0 * duration / max(1, n),
    )
    summary = {"rows": n, "feature_names": encoder.feature_names,
               "windows": window_sums(chunks, result.values), "duration_s": duration}
    if not write:
        return WorkerResult(**summary, explanations=rows)
    if _STORE is None:
        return WorkerResult(**summary, store_error=_STORE_ERROR)
    try:
        _STORE.add_explanations(rows)
    except Exception as exc:  # noqa: BLE001 - a store outage must not stop explaining
        return WorkerResult(**summary, store_error=f"{type(exc).__name__}: {exc}")
    return WorkerResult(**summary, stored_at=time.time())
