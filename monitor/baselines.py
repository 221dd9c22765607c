"""Where the daemon finds the baseline of each model version, or learns one.

Lookup order for (model, version): the file named in the model's configuration
(when it is for that version), ``baseline_dir/<model>/<version>.json``, the store.
When none exists, the first ``learn_baseline_events`` live events of that version
become its reference (bounded buffer); the learned baseline is saved and never
rebuilt silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from monitor.baseline import Baseline, BaselineError, build_baseline, load_baseline
from monitor.config import Settings

__all__ = ["BaselineRegistry"]

log = logging.getLogger(__name__)


class BaselineRegistry:
    """Baselines by (model, version), loaded once and cached.

    Parameters
    ----------
    load_from_store, save_to_store
        Optional callables to read/write a baseline profile dict in the store.
    """

    def __init__(
        self,
        settings: Settings,
        load_from_store: Callable[[str, str], dict[str, Any] | None] | None = None,
        save_to_store: Callable[[Baseline], None] | None = None,
    ) -> None:
        self.settings = settings
        self._load_from_store = load_from_store
        self._save_to_store = save_to_store
        self._cache: dict[tuple[str, str], Baseline | None] = {}
        self._learning: dict[tuple[str, str], list[tuple[dict[str, Any], Any, float]]] = {}
        self.errors: dict[tuple[str, str], str] = {}

    def path_for(self, model: str, version: str) -> Path:
        root = Path(self.settings.baseline_dir).resolve()
        path = (root / model / f"{version}.json").resolve()
        if root not in path.parents:
            raise BaselineError(f"model {model!r} version {version!r} would leave the baseline directory")
        return path

    def add(self, baseline: Baseline) -> None:
        self._cache[(baseline.model, baseline.version)] = baseline

    def get(self, model: str, version: str) -> Baseline | None:
        key = (model, version)
        if key not in self._cache:
            self._cache[key] = self._find(model, version)
        return self._cache[key]

    def _find(self, model: str, version: str) -> Baseline | None:
        candidates: list[Path] = []
        config = self.settings.model(model)
        if config is not None and config.baseline is not None:
            candidates.append(config.baseline)
        try:
            candidates.append(self.path_for(model, version))
        except BaselineError as exc:
            self.errors[(model, version)] = str(exc)
            return None
        for path in candidates:
            if not path.exists():
                continue
            try:
                baseline = load_baseline(path)
            except BaselineError as exc:
                self.errors[(model, version)] = str(exc)
                log.error("baseline for %s %s unusable: %s", model, version, exc)
                continue
            if baseline.model == model and baseline.version == version:
                self._share(baseline)
                return baseline
        if self._load_from_store is not None:
            try:
                profile = self._load_from_store(model, version)
            except Exception as exc:  # noqa: BLE001 - the store may be down; learn or retry later
                log.warning("could not read baseline %s %s from the store: %s", model, version, exc)
                return None
            if profile is not None:
                return Baseline.from_dict(profile)
        return None

    def _share(self, baseline: Baseline) -> None:
        """Put a baseline read from a file into the store too, for the app and other daemons."""
        if self._save_to_store is None:
            return
        try:
            self._save_to_store(baseline)
        except Exception as exc:  # noqa: BLE001 - the store may be down or hold another profile
            log.warning("baseline %s %s not copied to the store: %s", baseline.model, baseline.version, exc)

    def learn(self, model: str, version: str, features: list[dict[str, Any]], predictions: list[Any], scores: list[float]) -> Baseline | None:
        """Buffer events of a version without a baseline; build it once enough arrived."""
        key = (model, version)
        buffer = self._learning.setdefault(key, [])
        need = self.settings.learn_baseline_events - len(buffer)
        buffer.extend(zip(features[:need], predictions[:need], scores[:need]))
        if len(buffer) < self.settings.learn_baseline_events:
            return None
        del self._learning[key]
        frame = pd.DataFrame([f for f, _, _ in buffer])
        frame["__prediction__"] = [p for _, p, _ in buffer]
        config = self.settings.model(model)
        task = config.task if config is not None else "binary"
        has_scores = any(s == s for _, _, s in buffer)
        if has_scores:
            frame["__score__"] = [s for _, _, s in buffer]
        limit = self.settings.limits.max_features_per_model
        feature_columns = [c for c in frame.columns if not c.startswith("__")][:limit]
        baseline = build_baseline(
            frame, model, version, prediction="__prediction__", score="__score__" if has_scores else None,
            task=task, features=feature_columns, top_k=min(20, self.settings.limits.max_categories_per_feature),
            sample_size=self.settings.windows.sample_size, source=f"learned from the first {len(buffer)} live events",
        )
        try:
            baseline.save(self.path_for(model, version))
        except (BaselineError, OSError) as exc:
            log.warning("learned baseline for %s %s not saved to disk: %s", model, version, exc)
        if self._save_to_store is not None:
            try:
                self._save_to_store(baseline)
            except Exception as exc:  # noqa: BLE001
                log.warning("learned baseline for %s %s not saved to the store: %s", model, version, exc)
        self._cache[key] = baseline
        log.info("learned baseline for %s %s from %d events", model, version, len(buffer))
        return baseline

    def learning_state(self) -> dict[str, Any]:
        return {f"{m}\x1f{v}": rows for (m, v), rows in self._learning.items()}

    def restore_learning(self, state: dict[str, Any]) -> None:
        self._learning = {tuple(k.split("\x1f", 1)): [tuple(r) for r in rows] for k, rows in state.items()}  # type: ignore[misc]
