"""SHAP explanations: safe model loading, explainer choice, the worker service.

Nothing here imports ``shap`` at import time; the daemon starts without it and the
explainers ask for it (with an actionable message) when a model is configured.

* :func:`load_model` — XGBoost/LightGBM native files, skops, pickle only when trusted
* :class:`ExplainService` — sampling and bounded queue (admission), process pool or Kafka (executors), results (sink)
* :func:`global_importances` — baseline importances (mean |SHAP|)
* :func:`train_demo_model` — the demo's LightGBM model
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from explainers.errors import AdditivityError, ExplainError, ModelLoadError, ShapUnavailable
from explainers.loading import LoadedModel, file_sha256, load_model

if TYPE_CHECKING:
    from explainers.demo_model import train_demo_model
    from explainers.importance import global_importances
    from explainers.service import ExplainService

__all__ = [
    "AdditivityError",
    "ExplainError",
    "ExplainService",
    "LoadedModel",
    "ModelLoadError",
    "ShapUnavailable",
    "file_sha256",
    "global_importances",
    "load_model",
    "train_demo_model",
]

_LAZY = {
    "ExplainService": "explainers.service",
    "global_importances": "explainers.importance",
    "train_demo_model": "explainers.demo_model",
}


def __getattr__(name: str) -> Any:
    # The service pulls in monitor's metrics and pandas; import it when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'explainers' has no attribute {name!r}")
