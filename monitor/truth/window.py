"""Label-based aggregates of one window, and the results computed from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import DriftResult, FeatureData
from detectors.calibration import ScoreHistogram, calibration_statistics
from detectors.cbpe import PredictionHistogram
from detectors.decision import decide
from detectors.performance import (
    BinaryCounts,
    MulticlassCounts,
    RegressionSums,
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
)
from detectors.registry import REGISTRY
from detectors.score_bins import ScoreBins
from monitor.results import LABEL, MetricValue, WindowKey

__all__ = ["LabelUpdate", "WindowTruth", "label_drift", "label_update", "score_bins"]

_OTHER = "__other__"
_MAX_LABEL_VALUES = 50  # distinct label values counted per window
_MIN_LABELS_FOR_DRIFT = 30
_LABEL_DRIFT_METHODS = ("chisquare", "psi")
# Numeric (regression) labels are counted on the baseline label's bin edges: the
# count-based methods that take numeric features.
_NUMERIC_LABEL_DRIFT_METHODS = ("psi", "jensenshannon")


@dataclass(frozen=True, slots=True)
class LabelUpdate:
    """Label-based results of one window, recomputed because new labels joined."""

    key: WindowKey
    window_start: float
    n_labels: int
    n_predictions: int
    performance: dict[str, MetricValue]
    calibration: dict[str, Any]
    label_counts: dict[str, int]
    label_drift: list[DriftResult] = field(default_factory=list)


class WindowTruth:
    """Label and score aggregates of one window of one key (all mergeable)."""

    __slots__ = (
        "binary",
        "dirty",
        "label_bins",
        "label_counts",
        "multiclass",
        "n_labels",
        "n_predictions",
        "predictions",
        "regression",
        "scores",
    )

    def __init__(self) -> None:
        self.n_predictions = 0
        self.n_labels = 0
        self.binary: BinaryCounts | None = None
        self.multiclass: MulticlassCounts | None = None
        self.regression: RegressionSums | None = None
        self.scores: ScoreHistogram | None = None  # joined scores with outcomes (calibration, AUC)
        self.predictions: PredictionHistogram | None = None  # all scored predictions (CBPE)
        self.label_counts: dict[str, int] = {}
        # Regression labels per bin of the baseline label's edges (bounded by the bins).
        self.label_bins: np.ndarray | None = None
        self.dirty = False

    def count_labels(self, labels: list[str]) -> None:
        """Count label values; past 50 distinct values the rest share ``__other__``."""
        values, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
        self._add_label_counts(zip(values.tolist(), counts.tolist()))

    def _add_label_counts(self, items: Any) -> None:
        for value, count in items:
            if value not in self.label_counts and len(self.label_counts) >= _MAX_LABEL_VALUES - 1:
                value = _OTHER
            self.label_counts[value] = self.label_counts.get(value, 0) + count

    def count_numeric_labels(self, values: np.ndarray, edges: np.ndarray) -> None:
        """Count finite numeric labels on the baseline label's bin edges."""
        values = values[np.isfinite(values)]
        bins = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        self.label_bins = bins if self.label_bins is None else self.label_bins + bins

    def merge(self, other: WindowTruth) -> WindowTruth:
        """A new window holding both windows' events (partial windows of one key from
        several partitions or daemons). Equal to one window that saw every event, up
        to float rounding, while a window has at most 50 distinct label values (past
        that, which values share ``__other__`` depends on arrival order, as it does
        in one window); multiclass classes are numbered in first-seen order (the
        seeded bootstrap intervals of macro metrics depend on that numbering)."""
        merged = WindowTruth.from_state(self.to_state())
        merged.n_predictions += other.n_predictions
        merged.n_labels += other.n_labels
        merged.dirty = self.dirty or other.dirty
        for name in ("binary", "multiclass", "regression", "scores", "predictions"):
            mine, theirs = getattr(merged, name), getattr(other, name)
            if theirs is not None:
                setattr(merged, name, type(theirs).from_state(theirs.to_state()) if mine is None else mine.merge(theirs))
        merged._add_label_counts(other.label_counts.items())
        if other.label_bins is not None:
            if merged.label_bins is not None and len(merged.label_bins) != len(other.label_bins):
                raise ValueError("cannot merge label histograms over different bin edges")
            merged.label_bins = other.label_bins.copy() if merged.label_bins is None else merged.label_bins + other.label_bins
        return merged

    def to_state(self) -> dict[str, Any]:
        def opt(part: Any) -> Any:
            return None if part is None else part.to_state()

        return {
            "n_predictions": self.n_predictions, "n_labels": self.n_labels, "dirty": self.dirty,
            "binary": opt(self.binary), "multiclass": opt(self.multiclass),
            "regression": opt(self.regression), "scores": opt(self.scores),
            "predictions": opt(self.predictions), "label_counts": self.label_counts,
            "label_bins": None if self.label_bins is None else self.label_bins.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WindowTruth:
        window = cls()
        window.n_predictions = int(state["n_predictions"])
        window.n_labels = int(state["n_labels"])
        window.dirty = bool(state["dirty"])
        for name, kind in (("binary", BinaryCounts), ("multiclass", MulticlassCounts),
                           ("regression", RegressionSums), ("scores", ScoreHistogram),
                           ("predictions", PredictionHistogram)):
            if state.get(name) is not None:
                setattr(window, name, kind.from_state(state[name]))
        window.label_counts = {str(k): int(v) for k, v in state["label_counts"].items()}
        if state.get("label_bins") is not None:  # absent from checkpoints before regression label drift
            window.label_bins = np.asarray(state["label_bins"], dtype=np.int64)
        return window


def score_bins(baseline: Any) -> ScoreBins:
    """The ROC AUC score bins of a baseline: its ``score_edges``, or the 0.001 grid
    for baselines built before them (or none)."""
    edges = getattr(baseline, "score_edges", None)
    return ScoreBins.fixed() if edges is None else ScoreBins(edges)


def label_update(key: WindowKey, start: float, window: WindowTruth, baseline: Any) -> LabelUpdate:
    """Realised performance, calibration and label drift of a window from its aggregates."""
    if window.binary is not None:
        stats = binary_metrics(window.binary, window.scores)
    elif window.multiclass is not None:
        stats = multiclass_metrics(window.multiclass)
    elif window.regression is not None:
        stats = regression_metrics(window.regression)
    else:
        stats = {}
    calibration: dict[str, Any] = {}
    if window.scores is not None and window.scores.n:
        calibration = calibration_statistics(window.scores)
        reference = baseline.calibration.get("reliability_curve", []) if baseline is not None else []
        calibration["reliability_curve"] = {"window": calibration["reliability_curve"], "baseline": reference}
    return LabelUpdate(
        key=key,
        window_start=start,
        n_labels=window.n_labels,
        n_predictions=window.n_predictions,
        performance={name: MetricValue(*estimate) for name, estimate in stats.items()},
        calibration=calibration,
        label_counts=dict(window.label_counts),
        label_drift=label_drift(baseline, window),
    )


def label_drift(baseline: Any, window: WindowTruth) -> list[DriftResult]:
    """Labels of the window vs the baseline's label profile.

    Class labels: chi-square and PSI on the label counts. Numeric (regression)
    labels: PSI and Jensen–Shannon on counts over the baseline label's bin edges.
    Empty without a baseline label profile or below 30 labels.
    """
    profile = getattr(baseline, "label", None)
    if profile is None or window.n_labels < _MIN_LABELS_FOR_DRIFT:
        return []
    if profile.kind == "categorical":
        counts = np.zeros(profile.n_bins)
        codes = profile.category_codes()
        for value, count in window.label_counts.items():
            counts[codes.get(value, profile.unseen_bin)] += count
        data = FeatureData("categorical", profile.counts, counts, unseen_bin=profile.unseen_bin,
                           expected_unseen=profile.unseen_estimate)
        methods = _LABEL_DRIFT_METHODS
    else:
        if window.label_bins is None or len(window.label_bins) != len(profile.counts) or window.label_bins.sum() == 0:
            return []
        data = FeatureData("numeric", profile.counts, window.label_bins.astype(np.float64))
        methods = _NUMERIC_LABEL_DRIFT_METHODS
    results = []
    for method in methods:
        spec = REGISTRY[method]
        score = spec.score(data)
        results.append(score.result(method, LABEL, spec.default_threshold))
    # One target, two views of it: no multiple-testing correction across them.
    return decide(results, correction="none", alpha=0.05)
