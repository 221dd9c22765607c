"""Checks and the summary line of ``driftd run`` at start.

:func:`check_models` turns configuration mistakes that would otherwise pass
silently into :class:`~monitor.config.ConfigError` naming the key: a
``models[].baseline`` file that does not exist (the daemon would fall back to
another baseline, or learn one) and a ``positive_class`` that the baseline's
labels do not contain (every score would be read for a class that never occurs).
:func:`log_startup` logs what the daemon runs with: one line per model (baseline
version and sha256, model file), the topics, the store and the windows.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from monitor.baseline import Baseline, BaselineError, load_baseline
from monitor.config import ConfigError, ModelSettings, Settings
from monitor.logs import log_event

__all__ = ["ModelFiles", "check_models", "log_startup"]

log = logging.getLogger("monitor.daemon")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """What one configured model starts with."""

    name: str
    baseline_path: Path | None
    baseline: Baseline | None
    model_file: Path | None


def _classes(baseline: Baseline) -> list[str] | None:
    """Classes the baseline saw as labels (else as predictions); None when not categorical."""
    for profile in (baseline.label, baseline.prediction):
        if profile is not None and profile.kind == "categorical":
            return list(profile.known_categories or profile.categories)
    return None


def _check(model: ModelSettings, settings: Settings) -> ModelFiles:
    key = f"models[{model.name}]"
    path = model.baseline
    if path is not None and not path.is_file():
        raise ConfigError(
            f"{key}.baseline: file {path} does not exist; build it with `driftd baseline build --model "
            f"{model.name} --version V --data train.parquet --out {path}`, or remove the key to use "
            f"{settings.baseline_dir}/{model.name}/<version>.json, the store or a learned baseline"
        )
    baseline = None
    if path is not None:
        try:
            baseline = load_baseline(path)
        except BaselineError as exc:
            raise ConfigError(f"{key}.baseline: {exc}") from None
        if baseline.model != model.name:
            raise ConfigError(
                f"{key}.baseline: {path} is the baseline of model {baseline.model!r}, "
                f"not {model.name!r}"
            )
        classes = _classes(baseline)
        if model.task == "binary" and classes and model.positive_class not in classes:
            raise ConfigError(
                f"{key}.positive_class: {model.positive_class!r} is not a class of the baseline's labels "
                f"({path}: {', '.join(repr(c) for c in classes[:10])}); set it to the label of the positive class"
            )
    return ModelFiles(model.name, path, baseline, model.model_file)


def check_models(settings: Settings) -> list[ModelFiles]:
    """Check every configured model's files; raises :class:`ConfigError` naming the key."""
    return [_check(model, settings) for model in settings.models]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def log_startup(settings: Settings, store_url: str) -> None:
    """Log the start-up summary: models with their baselines and model files, topics, store, windows."""
    try:
        models = check_models(settings)
    except ConfigError as exc:  # `driftd run` checked already; an in-process start only warns
        log.warning("configuration problem: %s", exc)
        models = []
    kafka, windows = settings.kafka, settings.windows
    topics = [kafka.predictions_topic] + ([kafka.labels_topic] if settings.labels.enabled else [])
    log_event(
        log,
        logging.INFO,
        "startup",
        "driftd starting: %d model(s) configured%s; topics %s (dead letters %s) on %s, group %s; store %s; "
        "windows %d s, allowed lateness %d s, min %d events",
        len(settings.models),
        "" if settings.models else " (any model name is accepted, baselines learned)",
        ", ".join(topics),
        kafka.dead_letter_topic,
        kafka.bootstrap_servers,
        kafka.group_id,
        store_url,
        windows.size_seconds,
        windows.allowed_lateness_seconds,
        windows.min_events,
        models=[m.name for m in settings.models],
        topics=topics,
        group_id=kafka.group_id,
        store=store_url,
    )
    for found in models:
        config = settings.model(found.name)
        assert config is not None
        if found.baseline is not None:
            baseline = (
                f"baseline {found.baseline.version} sha256 {found.baseline.sha256[:12]} "
                f"({len(found.baseline.features)} features) from {found.baseline_path}"
            )
        else:
            baseline = (
                f"baseline from {settings.baseline_dir}/{found.name}/<version>.json, the store, or "
                f"learned from the first {settings.learn_baseline_events} events"
            )
        model_file = "no model file (no explanations)"
        if found.model_file is not None and found.model_file.is_file():
            model_file = (
                f"model file {found.model_file} sha256 {_file_sha256(found.model_file)[:12]}"
            )
        log_event(
            log,
            logging.INFO,
            "startup_model",
            "model %s (%s, positive class %r): %s; %s",
            found.name,
            config.task,
            config.positive_class,
            baseline,
            model_file,
            model=found.name,
            baseline_version=found.baseline.version if found.baseline else None,
            baseline_sha256=found.baseline.sha256 if found.baseline else None,
            baseline_path=str(found.baseline_path) if found.baseline_path else None,
            model_file=str(found.model_file) if found.model_file else None,
        )
