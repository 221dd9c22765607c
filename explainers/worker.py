"""What runs inside an explanation worker process.

Each worker loads every model once, in the pool initializer, builds its SHAP
explainer and warms it up (the first call of some explainers compiles code); tasks
then carry only a model name and an input matrix. A model that fails to load in a
worker fails its tasks with the load error, which the service counts.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explainers.errors import ExplainError

__all__ = ["WorkerModel", "WorkerResult", "explain", "initialize", "ping"]

# Nice value added to worker processes: explanations run on CPU ingest does not need.
WORKER_NICENESS = 19
# Per-process state, set by initialize() in each worker (never in the daemon itself).
_EXPLAINERS: dict[str, object] = {}


@dataclass(frozen=True, slots=True)
class WorkerModel:
    """How a worker loads one model (picklable)."""

    name: str
    path: str
    sha256: str | None
    trust_pickle: bool
    trusted_types: tuple[str, ...]
    background: np.ndarray | None
    n_features: int


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """SHAP values of one task's rows (see :class:`~explainers.shap_backend.Explained`)."""

    values: np.ndarray
    base_values: np.ndarray
    outputs: np.ndarray
    duration_s: float
    explainer: str
    background_hash: str


def initialize(models: Sequence[WorkerModel], niceness: int = WORKER_NICENESS) -> None:
    """Pool initializer: load and warm up every model's explainer."""
    # Ctrl-C reaches the whole process group; the daemon decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Explanations are best effort: when CPU is short, ingest wins and the bounded
    # queue drops (and counts) what the workers cannot keep up with.
    try:
        os.nice(niceness)
    except OSError:
        pass
    from explainers.loading import load_model
    from explainers.shap_backend import make_explainer

    for spec in models:
        try:
            loaded = load_model(
                spec.path, name=spec.name, sha256=spec.sha256,
                trust_pickle=spec.trust_pickle, trusted_types=spec.trusted_types,
            )
            explainer = make_explainer(loaded, spec.background)
            warm = spec.background[:1] if spec.background is not None else np.zeros((1, spec.n_features))
            explainer.explain(warm, check=False)
            _EXPLAINERS[spec.name] = explainer
        except Exception as exc:  # noqa: BLE001 - reported on every task of this model
            _EXPLAINERS[spec.name] = ExplainError(f"model {spec.name!r} unavailable in worker: {exc}")


def ping() -> int:
    """A no-op task: submitting it starts a worker (and runs its initializer)."""
    return os.getpid()


def explain(model: str, X: np.ndarray) -> WorkerResult:
    """Explain the rows of ``X`` with ``model``'s explainer (additivity checked)."""
    explainer = _EXPLAINERS.get(model)
    if explainer is None:
        raise ExplainError(f"model {model!r} is not loaded in this worker")
    if isinstance(explainer, Exception):
        raise explainer
    started = time.perf_counter()
    result = explainer.explain(X)  # type: ignore[attr-defined]
    return WorkerResult(
        values=result.values,
        base_values=result.base_values,
        outputs=result.outputs,
        duration_s=time.perf_counter() - started,
        explainer=explainer.label,  # type: ignore[attr-defined]
        background_hash=explainer.background_hash,  # type: ignore[attr-defined]
    )
