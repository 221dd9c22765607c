"""What the explanation service knows about each model: its policy, budget and worker spec.

:func:`prepare_models` turns the configured models into :class:`ModelState` records
once, at start: the sampling policy and token bucket the admission side applies,
the recent-rows cache for predictions found wrong later, and the picklable
:class:`~explainers.worker.WorkerModel` a worker process loads. A model whose file
cannot be used gets an ``error`` instead of a spec; the service counts its sampled
rows as ``model_unavailable`` and the daemon runs on.

With ``load=False`` (the daemon of ``explain.mode: kafka``) model files are not
read: explaining happens in ``driftd explain-worker`` processes, which need the
files and SHAP; the daemon only samples and publishes.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from explainers import worker
from explainers.encoding import FeatureEncoder
from explainers.errors import ExplainError, ModelLoadError
from explainers.loading import load_model
from explainers.recent import RecentRows
from explainers.sampling import SamplingPolicy, TokenBucket
from monitor.config import ExplainSettings, ModelSettings

__all__ = ["BaselineSource", "ModelState", "baseline_for", "prepare_models", "worker_spec"]

log = logging.getLogger(__name__)

BaselineSource = Mapping[Any, Any] | Callable[[str, str | None], Any]

_SHAP_MISSING = "the optional 'shap' package is not installed: pip install 'driftd[explain]'"


@dataclass(slots=True)
class ModelState:
    """One explainable model: how rows are picked, and how workers load it."""

    name: str
    policy: SamplingPolicy
    bucket: TokenBucket
    recent: RecentRows | None
    spec: worker.WorkerModel | None
    error: str | None = None


def baseline_for(source: BaselineSource | None, model: str, version: str | None = None) -> Any:
    """The baseline of ``model`` (at ``version`` when given) from any supported source.

    ``source`` maps model → baseline or (model, version) → baseline, or is a callable
    ``(model, version) -> Baseline | None`` (asked only with a version).
    """
    if source is None:
        return None
    if callable(source) and not isinstance(source, Mapping):
        return source(model, version) if version is not None else None
    if version is not None and (model, version) in source:
        return source[(model, version)]
    return source.get(model)


def _start_baseline(source: BaselineSource | None, name: str, settings: ModelSettings) -> Any:
    """A baseline for set-up (background rows, feature names) before any version is seen."""
    baseline = baseline_for(source, name)
    if baseline is None and settings.baseline is not None:
        from monitor.baseline import BaselineError, load_baseline

        try:
            baseline = load_baseline(settings.baseline)
        except BaselineError as exc:
            log.warning("model %s: %s", name, exc)
    return baseline


def worker_spec(name: str, settings: ModelSettings, baselines: BaselineSource | None) -> worker.WorkerModel:
    """Load ``name``'s model file once here to build what a worker needs to load it.

    Raises
    ------
    ExplainError
        When the file cannot be used (missing, unsafe, not the pinned file), or the
        feature names or the permutation explainer's background cannot be found.
    """
    trusted = tuple(getattr(settings, "skops_trusted_types", ()) or ())
    loaded = load_model(
        settings.model_file, name=name, sha256=settings.model_sha256,
        trust_pickle=settings.trust_pickle, trusted_types=trusted,
    )
    baseline = _start_baseline(baselines, name, settings)
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
    return worker.WorkerModel(
        name=name, path=str(settings.model_file), sha256=loaded.sha256,
        trust_pickle=settings.trust_pickle, trusted_types=trusted,
        background=background, encoder=encoder,
    )


def prepare_models(
    settings: ExplainSettings,
    models: Mapping[str, ModelSettings],
    baselines: BaselineSource | None,
    clock: Callable[[], float],
    recent_rows: int,
    *,
    load: bool = True,
) -> dict[str, ModelState]:
    """A :class:`ModelState` per model with a ``model_file`` (others are not explained).

    Load errors are logged and recorded in the state's ``error``, never raised.
    """
    shap_missing = load and importlib.util.find_spec("shap") is None
    states: dict[str, ModelState] = {}
    for name, model_settings in models.items():
        if model_settings.model_file is None:
            continue
        policy = SamplingPolicy(
            base_rate=settings.base_rate,
            drifted_window_rate=settings.drifted_window_rate,
            near_threshold_band=settings.near_threshold_band if model_settings.task == "binary" else 0.0,
            decision_threshold=model_settings.decision_threshold,
        )
        recent = RecentRows(recent_rows) if settings.explain_wrong else None
        state = ModelState(name, policy, TokenBucket(settings.max_per_second, clock=clock), recent, None)
        if shap_missing:
            state.error = _SHAP_MISSING
        elif load:
            try:
                state.spec = worker_spec(name, model_settings, baselines)
            except ExplainError as exc:
                state.error = str(exc)
        if state.error:
            log.error("explanations disabled for model %s: %s", name, state.error)
        states[name] = state
    return states
