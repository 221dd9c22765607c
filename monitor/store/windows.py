"""Conversions between :class:`~monitor.results.WindowReport` and the window tables.

A report becomes one ``window_results`` row and one ``feature_results`` row per
drift verdict (input features, then prediction and label verdicts, recognised on
the way back by their ``__prediction__`` / ``__label__`` name prefix). Epoch
seconds become aware UTC datetimes; NaN scores are stored as NULL (NaN in JSON
columns as null) and read back as NaN. ``baseline_missing_ratio`` is not stored:
it belongs to the baseline profile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detectors.base import DriftResult
from monitor.results import (
    LABEL,
    MULTIVARIATE,
    PREDICTION,
    AttributionSummary,
    MetricValue,
    WindowKey,
    WindowReport,
)
from monitor.store.errors import StoreError
from monitor.store.records import FeatureRecord, WindowRecord

__all__ = [
    "feature_record",
    "feature_values",
    "report_from_rows",
    "to_datetime",
    "window_record",
    "window_values",
]

_NAN = float("nan")


def to_datetime(value: float | int | datetime, what: str = "time") -> datetime:
    """An aware UTC datetime from epoch seconds or a datetime (naive means UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds):
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                pass
    raise StoreError(f"{what}: expected epoch seconds or a datetime, got {value!r}")


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _nan_if_none(value: float | None) -> float:
    return _NAN if value is None else float(value)


def _metric_json(values: Mapping[str, MetricValue]) -> dict[str, list[float]]:
    # [value, lower, upper] plus the binning error where there is one (ROC AUC).
    return {
        str(name): [float(v) for v in value][: 3 if math.isnan(MetricValue(*value).error) else 4]
        for name, value in values.items()
    }


def _metric_values(data: Mapping[str, Any] | None) -> dict[str, MetricValue]:
    return {
        name: MetricValue(*(_nan_if_none(v) for v in (list(value) + [None, None])[: max(3, min(4, len(value)))]))
        for name, value in (data or {}).items()
    }


def window_values(report: WindowReport, now: datetime) -> dict[str, Any]:
    """Column values of the ``window_results`` row of ``report``."""
    key = report.key
    return {
        "model": str(key.model),
        "version": str(key.version),
        "segment": str(key.segment),
        "window_start": to_datetime(report.window_start, "window_start"),
        "window_end": to_datetime(report.window_end, "window_end"),
        "closed_at": to_datetime(report.closed_at, "closed_at") if report.closed_at else now,
        "updated_at": now,
        "n_events": int(report.n_events),
        "n_labels": int(report.n_labels),
        "drift_share": float(report.drift_share),
        "drift_score": float(report.drift_score),
        "model_drifted": bool(report.model_drifted),
        "n_drifted_features": sum(1 for r in report.features if r.drifted),
        "n_late": int(report.n_late),
        "performance": _metric_json(report.performance),
        "baseline_performance": {str(k): float(v) for k, v in report.baseline_performance.items()},
        "estimated_performance": _metric_json(report.estimated_performance),
        "calibration": dict(report.calibration),
        "baseline_calibration": dict(report.baseline_calibration),
        "attribution": asdict(report.attribution) if report.attribution is not None else {},
    }


def _sections(report: WindowReport) -> Iterable[tuple[DriftResult, str]]:
    for result in report.features:
        yield result, report.feature_kinds.get(result.feature, "unknown")
    for result in report.prediction:
        yield result, report.feature_kinds.get(result.feature, "prediction")
    for result in report.label:
        yield result, report.feature_kinds.get(result.feature, "label")
    for result in report.multivariate:
        yield result, "multivariate"


def feature_values(
    report: WindowReport, window_id: int, window_start: datetime
) -> list[dict[str, Any]]:
    """Column values of the ``feature_results`` rows of ``report``."""
    rows = []
    model = str(report.key.model)
    for result, kind in _sections(report):
        name = result.feature
        counts = report.feature_counts.get(name)
        rows.append(
            {
                "window_id": window_id,
                "model": model,
                "window_start": window_start,
                "feature": str(name),
                "kind": str(kind),
                "method": str(result.method),
                "score": _finite_or_none(result.score),
                "p_value": _finite_or_none(result.p_value),
                "threshold": float(result.threshold),
                "drifted": bool(result.drifted),
                "missing_ratio": _finite_or_none(report.missing_ratio.get(name)),
                "unseen_ratio": _finite_or_none(report.unseen_ratio.get(name)),
                "counts": None if counts is None else np.asarray(counts).tolist(),
            }
        )
    return rows


def _calibration(data: Mapping[str, Any] | None) -> dict[str, Any]:
    # Statistics written as NaN come back as null; nested curves are returned as stored.
    return {k: _NAN if v is None else v for k, v in (data or {}).items()}


def _attribution(data: Mapping[str, Any] | None) -> AttributionSummary | None:
    if not data:
        return None
    return AttributionSummary(
        ndcg=_nan_if_none(data.get("ndcg")),
        drifted=bool(data.get("drifted")),
        threshold=_nan_if_none(data.get("threshold")),
        n_explanations=int(data.get("n_explanations") or 0),
        mean_abs_shap={k: _nan_if_none(v) for k, v in (data.get("mean_abs_shap") or {}).items()},
        relative_change={
            k: _nan_if_none(v) for k, v in (data.get("relative_change") or {}).items()
        },
    )


def window_record(row: Any) -> WindowRecord:
    """A :class:`WindowRecord` from a ``WindowResultRow`` (or a row with its columns)."""
    return WindowRecord(
        model=row.model,
        version=row.version,
        segment=row.segment,
        window_start=row.window_start,
        window_end=row.window_end,
        closed_at=row.closed_at,
        updated_at=row.updated_at,
        n_events=row.n_events,
        n_labels=row.n_labels,
        drift_share=row.drift_share,
        drift_score=row.drift_score,
        model_drifted=bool(row.model_drifted),
        n_drifted_features=row.n_drifted_features,
        n_late=row.n_late,
        performance=_metric_values(row.performance),
        baseline_performance={
            k: _nan_if_none(v) for k, v in (row.baseline_performance or {}).items()
        },
        estimated_performance=_metric_values(row.estimated_performance),
        calibration=_calibration(row.calibration),
        baseline_calibration=_calibration(row.baseline_calibration),
        attribution=_attribution(row.attribution),
    )


def feature_record(row: Any, version: str, segment: str) -> FeatureRecord:
    """A :class:`FeatureRecord` from a ``FeatureResultRow`` and its window's version and segment."""
    return FeatureRecord(
        model=row.model,
        version=version,
        segment=segment,
        window_start=row.window_start,
        feature=row.feature,
        kind=row.kind,
        method=row.method,
        score=_nan_if_none(row.score),
        p_value=row.p_value,
        threshold=row.threshold,
        drifted=bool(row.drifted),
        missing_ratio=row.missing_ratio,
        unseen_ratio=row.unseen_ratio,
        counts=row.counts,
    )


def report_from_rows(window: Any, features: Iterable[Any]) -> WindowReport:
    """Rebuild the :class:`WindowReport` that was written as ``window`` and ``features`` rows."""
    record = window_record(window)
    report = WindowReport(
        key=WindowKey(record.model, record.version, record.segment),
        window_start=record.window_start.timestamp(),
        window_end=record.window_end.timestamp(),
        n_events=record.n_events,
        drift_share=record.drift_share,
        drift_score=record.drift_score,
        model_drifted=record.model_drifted,
        closed_at=record.closed_at.timestamp(),
        n_labels=record.n_labels,
        n_late=record.n_late,
        performance=record.performance,
        baseline_performance=record.baseline_performance,
        estimated_performance=record.estimated_performance,
        calibration=record.calibration,  # type: ignore[arg-type]
        baseline_calibration=record.baseline_calibration,  # type: ignore[arg-type]
        attribution=record.attribution,
    )
    for row in features:
        result = DriftResult(
            method=row.method,
            feature=row.feature,
            score=_nan_if_none(row.score),
            p_value=row.p_value,
            threshold=row.threshold,
            drifted=bool(row.drifted),
        )
        if row.feature.startswith(PREDICTION):
            report.prediction.append(result)
        elif row.feature.startswith(LABEL):
            report.label.append(result)
        elif row.feature == MULTIVARIATE:
            report.multivariate.append(result)
        else:
            report.features.append(result)
        if row.missing_ratio is not None:
            report.missing_ratio[row.feature] = row.missing_ratio
        if row.unseen_ratio is not None:
            report.unseen_ratio[row.feature] = row.unseen_ratio
        if row.counts is not None:
            report.feature_counts[row.feature] = list(row.counts)
        report.feature_kinds[row.feature] = row.kind
    return report
