"""Records a closed window produces; metrics, the store, alerts and the app read them.

A :class:`WindowReport` is created when a window closes (data and prediction
drift) and is completed later as labels arrive (performance, calibration) and as
explanations are computed (attribution). Each part is optional so that every
producer fills in only its own section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from detectors.base import DriftResult

__all__ = ["LABEL", "MULTIVARIATE", "PREDICTION", "PREDICTION_SCORE", "AttributionSummary", "MetricValue", "WindowKey", "WindowReport"]

# Pseudo-feature names under which prediction drift and label drift are reported.
PREDICTION = "__prediction__"
PREDICTION_SCORE = "__prediction_score__"
LABEL = "__label__"
MULTIVARIATE = "__multivariate__"


class WindowKey(NamedTuple):
    """What a window is kept per: model, model version and segment (``""`` for none)."""

    model: str
    version: str
    segment: str


class MetricValue(NamedTuple):
    """A performance figure with its confidence interval (bounds may be NaN when undefined).

    ``error`` bounds the approximation from aggregates (ROC AUC: the binning error,
    already inside the interval); NaN for metrics computed exactly.
    """

    value: float
    lower: float = float("nan")
    upper: float = float("nan")
    error: float = float("nan")


@dataclass(frozen=True, slots=True)
class AttributionSummary:
    """Mean |SHAP| of a window against the baseline's global importances."""

    ndcg: float
    drifted: bool
    threshold: float
    n_explanations: int
    mean_abs_shap: dict[str, float]
    relative_change: dict[str, float]


@dataclass(slots=True)
class WindowReport:
    """Everything known about one closed window of one (model, version, segment)."""

    key: WindowKey
    window_start: float
    window_end: float
    n_events: int
    features: list[DriftResult] = field(default_factory=list)
    prediction: list[DriftResult] = field(default_factory=list)
    label: list[DriftResult] = field(default_factory=list)
    # Multivariate drift of the numeric features on the window's bounded sample.
    multivariate: list[DriftResult] = field(default_factory=list)
    drift_share: float = 0.0
    drift_score: float = 0.0
    model_drifted: bool = False
    missing_ratio: dict[str, float] = field(default_factory=dict)
    baseline_missing_ratio: dict[str, float] = field(default_factory=dict)
    unseen_ratio: dict[str, float] = field(default_factory=dict)
    # Expected unseen share with no drift (the baseline's Good-Turing estimate; 0 when unknown).
    unseen_expected_ratio: dict[str, float] = field(default_factory=dict)
    # Share of a numeric feature's values that were ±inf (not binned, not missing).
    nonfinite_ratio: dict[str, float] = field(default_factory=dict)
    # Window counts per baseline bin and the kind of each feature (for the store and app).
    feature_counts: dict[str, list[int]] = field(default_factory=dict)
    feature_kinds: dict[str, str] = field(default_factory=dict)
    closed_at: float = 0.0
    # Events of this key that came behind the watermark since its previous window closed.
    n_late: int = 0
    # Filled in as labels arrive.
    n_labels: int = 0
    performance: dict[str, MetricValue] = field(default_factory=dict)
    baseline_performance: dict[str, float] = field(default_factory=dict)
    estimated_performance: dict[str, MetricValue] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)
    baseline_calibration: dict[str, float] = field(default_factory=dict)
    # Filled in as explanations are stored.
    attribution: AttributionSummary | None = None

    @property
    def label_coverage(self) -> float:
        """Share of the window's predictions whose label has arrived."""
        return self.n_labels / self.n_events if self.n_events else 0.0

    @property
    def drifted_features(self) -> list[str]:
        return [r.feature for r in self.features if r.drifted]
