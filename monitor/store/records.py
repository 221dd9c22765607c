"""What the store's read API returns: small frozen records with aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.results import AttributionSummary, MetricValue, WindowKey

__all__ = [
    "BaselineInfo",
    "ExplanationRecord",
    "FeatureRecord",
    "ModelSummary",
    "WindowRecord",
]


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    """A stored baseline without its profile."""

    model: str
    version: str
    sha256: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """A (model, version) that has windows, with its newest window."""

    model: str
    version: str
    n_windows: int
    last_window_start: datetime
    last_window_end: datetime


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One stored window without its feature rows (see :meth:`Store.window_report`)."""

    model: str
    version: str
    segment: str
    window_start: datetime
    window_end: datetime
    closed_at: datetime
    updated_at: datetime
    n_events: int
    n_labels: int
    drift_share: float
    drift_score: float
    model_drifted: bool
    n_drifted_features: int
    performance: dict[str, MetricValue]
    baseline_performance: dict[str, float]
    estimated_performance: dict[str, MetricValue]
    calibration: dict[str, object]
    baseline_calibration: dict[str, object]
    attribution: AttributionSummary | None
    n_late: int = 0

    @property
    def key(self) -> WindowKey:
        return WindowKey(self.model, self.version, self.segment)


@dataclass(frozen=True, slots=True)
class FeatureRecord:
    """The verdict on one feature (or ``__prediction__`` / ``__label__``) in one window."""

    model: str
    version: str
    segment: str
    window_start: datetime
    feature: str
    kind: str
    method: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    missing_ratio: float | None
    unseen_ratio: float | None
    counts: list[int] | None


@dataclass(frozen=True, slots=True)
class ExplanationRecord:
    """SHAP values of one sampled prediction."""

    prediction_id: str
    model: str
    version: str
    segment: str
    event_time: datetime
    window_start: datetime
    features: dict[str, object]
    prediction: float
    base_value: float
    shap_values: dict[str, float]
    explainer: str
    background_hash: str
    duration_ms: float
    reason: str
    created_at: datetime
