"""Baselines: the reference profile of one model version.

A baseline is built once from training or validation data (``driftd baseline
build``) and never rebuilt silently. Per feature it holds the type, bin edges
(reference quantiles for numbers, top-k categories plus "other" for strings),
reference counts, a bounded reference sample and the missing rate; for the model
it holds the prediction (and label) profiles, reference performance, calibration
and, when known, global feature importances.

Bins of a numeric feature are open at both ends: with interior edges
``e_1 < ... < e_{B-1}`` a value ``x`` falls in bin ``searchsorted(edges, x,
side="right")``. Bins of a categorical feature are the top-k categories, then
"other known" (in the stored list of at most ``max_known`` categories, not in the
top-k), then "unseen" (outside the stored list: in the reference, the categories
beyond the list; in a window also every value the reference never saw). Windows
bin the same way, so each bin means the same on both sides; the expected unseen
share of a window is estimated by Good–Turing (``unseen_estimate``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd

from detectors.calibration import reference_calibration
from detectors.performance import reference_performance
from detectors.score_bins import ScoreBins
from detectors.unseen import unseen_estimate

__all__ = [
    "Baseline",
    "BaselineError",
    "FeatureProfile",
    "build_baseline",
    "category_strings",
    "load_baseline",
    "profile_column",
]

FORMAT_VERSION = 1
# Numeric columns with at most this many distinct values are profiled as categories.
_DISCRETE_LIMIT = 10


class BaselineError(ValueError):
    """A baseline cannot be built or read; the message says why."""


@dataclass(slots=True)
class FeatureProfile:
    """Reference profile of one feature (or of the prediction, or the label)."""

    name: str
    kind: Literal["numeric", "categorical"]
    n: int
    missing_ratio: float
    counts: np.ndarray
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    categories: list[str] = field(default_factory=list)
    known_categories: list[str] = field(default_factory=list)
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    mean: float = float("nan")
    std: float = float("nan")
    minimum: float = float("nan")
    maximum: float = float("nan")
    # Categorical: expected share of the "unseen" bin with no drift (Good-Turing,
    # detectors.unseen.unseen_estimate); None in baselines built before it existed.
    unseen_estimate: float | None = None

    @property
    def n_bins(self) -> int:
        return len(self.counts)

    @property
    def unseen_bin(self) -> int | None:
        return len(self.categories) + 1 if self.kind == "categorical" else None

    def category_codes(self) -> dict[str, int]:
        """Category → bin index; known categories outside the top-k map to "other"."""
        other = len(self.categories)
        codes = {c: other for c in self.known_categories}
        codes.update({c: i for i, c in enumerate(self.categories)})
        return codes

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "missing_ratio": self.missing_ratio,
            "counts": self.counts.tolist(),
            "edges": self.edges.tolist(),
            "categories": self.categories,
            "known_categories": self.known_categories,
            "sample": self.sample.tolist(),
            "mean": _json_float(self.mean),
            "std": _json_float(self.std),
            "min": _json_float(self.minimum),
            "max": _json_float(self.maximum),
            **({} if self.unseen_estimate is None else {"unseen_estimate": self.unseen_estimate}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureProfile:
        return cls(
            name=data["name"],
            kind=data["kind"],
            n=int(data["n"]),
            missing_ratio=float(data["missing_ratio"]),
            counts=np.asarray(data["counts"], dtype=np.float64),
            edges=np.asarray(data.get("edges", []), dtype=np.float64),
            categories=list(data.get("categories", [])),
            known_categories=list(data.get("known_categories", [])),
            sample=np.asarray(data.get("sample", []), dtype=np.float64),
            mean=_float(data.get("mean")),
            std=_float(data.get("std")),
            minimum=_float(data.get("min")),
            maximum=_float(data.get("max")),
            unseen_estimate=None if data.get("unseen_estimate") is None else float(data["unseen_estimate"]),
        )


def _json_float(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


@dataclass(slots=True)
class Baseline:
    """The versioned reference profile of one model version."""

    model: str
    version: str
    task: str
    features: dict[str, FeatureProfile]
    prediction: FeatureProfile | None = None
    label: FeatureProfile | None = None
    # Probability of the positive class, profiled like a numeric feature.
    score: FeatureProfile | None = None
    importances: dict[str, float] = field(default_factory=dict)
    performance: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    # Bounded multivariate reference sample: column -> values (same rows in every column).
    reference_rows: dict[str, list[Any]] = field(default_factory=dict)
    # Interior score-bin edges for ROC AUC (detectors.score_bins); None: the 0.001 grid.
    score_edges: np.ndarray | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    source: str = ""

    @property
    def numeric_names(self) -> list[str]:
        return [n for n, p in self.features.items() if p.kind == "numeric"]

    @property
    def categorical_names(self) -> list[str]:
        return [n for n, p in self.features.items() if p.kind == "categorical"]

    def to_dict(self) -> dict[str, Any]:
        def opt(profile: FeatureProfile | None) -> dict[str, Any] | None:
            return None if profile is None else profile.to_dict()

        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "version": self.version,
            "task": self.task,
            "created_at": self.created_at,
            "source": self.source,
            "features": {name: p.to_dict() for name, p in self.features.items()},
            "prediction": opt(self.prediction),
            "label": opt(self.label),
            "score": opt(self.score),
            "importances": self.importances,
            "performance": self.performance,
            "calibration": self.calibration,
            "reference_rows": self.reference_rows,
            **({} if self.score_edges is None else {"score_edges": self.score_edges.tolist()}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        if data.get("format_version") != FORMAT_VERSION:
            raise BaselineError(
                f"baseline format_version {data.get('format_version')!r} is not supported "
                f"(expected {FORMAT_VERSION}); rebuild it with `driftd baseline build`"
            )

        def opt(raw: dict[str, Any] | None) -> FeatureProfile | None:
            return None if raw is None else FeatureProfile.from_dict(raw)

        return cls(
            model=data["model"],
            version=data["version"],
            task=data.get("task", "binary"),
            created_at=data.get("created_at", ""),
            source=data.get("source", ""),
            features={n: FeatureProfile.from_dict(p) for n, p in data["features"].items()},
            prediction=opt(data.get("prediction")),
            label=opt(data.get("label")),
            score=opt(data.get("score")),
            importances=dict(data.get("importances") or {}),
            performance=dict(data.get("performance") or {}),
            calibration=dict(data.get("calibration") or {}),
            reference_rows=dict(data.get("reference_rows") or {}),
            score_edges=None if data.get("score_edges") is None else np.asarray(data["score_edges"], np.float64),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the baseline as JSON; refuses to replace a different baseline at ``path``."""
        path = Path(path)
        payload = self.to_json()
        if path.exists() and path.read_bytes() != payload:
            raise BaselineError(
                f"{path} already holds a different baseline for {self.model} {self.version}; "
                "baselines are never rebuilt silently: use a new version or remove the file"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(payload)
        tmp.replace(path)
        return path


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline JSON file written by :meth:`Baseline.save`."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise BaselineError(f"baseline {path} is not valid JSON: {exc}") from exc
    try:
        return Baseline.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"baseline {path} is malformed: {exc}") from exc


def _is_categorical(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return True
    return series.nunique(dropna=True) <= _DISCRETE_LIMIT and pd.api.types.is_integer_dtype(series)


def category_strings(series: pd.Series) -> pd.Series:
    """Categories as strings, the way events carry them (booleans as 'true'/'false')."""
    if pd.api.types.is_bool_dtype(series):
        return series.map({True: "true", False: "false"})
    return series.astype("string").astype(object).where(series.notna(), None)


def profile_column(
    name: str,
    series: pd.Series,
    kind: str | None = None,
    *,
    n_bins: int = 10,
    top_k: int = 20,
    sample_size: int = 2000,
    max_known: int = 1000,
    seed: int = 0,
) -> FeatureProfile:
    """Profile one column: bins from reference quantiles (numeric) or top-k categories."""
    n = len(series)
    missing = int(series.isna().sum())
    kind = kind or ("categorical" if _is_categorical(series) else "numeric")
    if kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            raise BaselineError(f"feature {name!r}: no numeric values to profile")
        quantiles = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])
        edges = np.unique(quantiles)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        rng = np.random.default_rng(seed)
        sample = values if len(values) <= sample_size else rng.choice(values, sample_size, replace=False)
        return FeatureProfile(
            name=name, kind="numeric", n=n, missing_ratio=missing / n if n else 0.0,
            counts=counts.astype(np.float64), edges=edges, sample=np.sort(sample),
            mean=float(values.mean()), std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            minimum=float(values.min()), maximum=float(values.max()),
        )
    strings = category_strings(series).dropna()
    frequencies = strings.value_counts()
    categories = [str(c) for c in frequencies.index[:top_k]]
    known = [str(c) for c in frequencies.index[:max_known]]
    counts = np.zeros(len(categories) + 2)
    counts[: len(categories)] = frequencies.to_numpy()[: len(categories)]
    counts[len(categories)] = frequencies.to_numpy()[len(categories):len(known)].sum()
    counts[len(categories) + 1] = frequencies.to_numpy()[len(known):].sum()
    return FeatureProfile(
        name=name, kind="categorical", n=n, missing_ratio=missing / n if n else 0.0,
        counts=counts, categories=categories, known_categories=known,
        unseen_estimate=unseen_estimate(frequencies.to_numpy(), len(known)),
    )


def build_baseline(
    frame: pd.DataFrame,
    model: str,
    version: str,
    *,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    task: str = "binary",
    positive_class: str = "1",
    features: list[str] | None = None,
    feature_types: dict[str, str] | None = None,
    importances: dict[str, float] | None = None,
    n_bins: int = 10,
    top_k: int = 20,
    sample_size: int = 2000,
    reference_rows: int = 500,
    seed: int = 0,
    source: str = "",
) -> Baseline:
    """Profile a training or validation frame into a :class:`Baseline`.

    Parameters
    ----------
    frame
        One row per example; feature columns plus optional target/prediction/score.
    target, prediction, score
        Column names of the true label, the model's prediction and the positive-class
        probability (multiclass: the probability of the predicted class). Reference performance and calibration need target and
        prediction (and score for ROC AUC, log loss and calibration).
    features
        Feature columns; all columns except target/prediction/score when None.
    """
    if frame.empty:
        raise BaselineError("cannot build a baseline from an empty table")
    special = {c for c in (target, prediction, score) if c}
    for column in special:
        if column not in frame.columns:
            raise BaselineError(f"column {column!r} not in the data; columns: {', '.join(map(str, frame.columns))}")
    names = features if features is not None else [c for c in frame.columns if c not in special]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise BaselineError(f"feature columns not in the data: {missing}")
    types = feature_types or {}
    options = dict(n_bins=n_bins, top_k=top_k, sample_size=sample_size, seed=seed)
    profiles = {str(c): profile_column(str(c), frame[c], types.get(str(c)), **options) for c in names}
    prediction_kind = "numeric" if task == "regression" else "categorical"
    baseline = Baseline(
        model=model,
        version=version,
        task=task,
        features=profiles,
        prediction=profile_column("__prediction__", frame[prediction], prediction_kind, **options) if prediction else None,
        label=profile_column("__label__", frame[target], prediction_kind, **options) if target else None,
        score=profile_column("__score__", frame[score], "numeric", **options) if score else None,
        importances=dict(importances or {}),
        source=source,
    )
    rows = frame[[c for c in names]].sample(n=min(reference_rows, len(frame)), random_state=seed)
    baseline.reference_rows = {
        str(c): [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in rows[c]] for c in rows.columns
    }
    if score and task == "binary":  # ROC AUC bins where this model's scores lie
        baseline.score_edges = ScoreBins.from_reference(pd.to_numeric(frame[score], errors="coerce")).edges
    if target and prediction:
        baseline.performance, baseline.calibration = _reference_quality(frame, target, prediction, score, task, positive_class)
    return baseline


def _reference_quality(
    frame: pd.DataFrame, target: str, prediction: str, score: str | None, task: str, positive_class: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """Reference performance and calibration, computed by the same code as live windows."""
    performance = reference_performance(
        frame[target], frame[prediction], frame[score] if score else None, task, positive_class=positive_class
    )
    calibration = (
        reference_calibration(frame[target], frame[score], task, y_pred=frame[prediction], positive_class=positive_class)
        if score else {}
    )
    return performance, calibration
