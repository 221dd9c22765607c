"""Validation of explanation rows written by the explainers, and the records read back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.store.errors import StoreError
from monitor.store.records import ExplanationRecord
from monitor.store.schema import ExplanationRow
from monitor.store.windows import to_datetime

__all__ = ["explanation_record", "explanation_values"]

_EXPLANATION_REQUIRED = (
    "prediction_id",
    "model",
    "version",
    "event_time",
    "window_start",
    "features",
    "prediction",
    "base_value",
    "shap_values",
    "explainer",
    "duration_ms",
)
_EXPLANATION_COLUMNS = frozenset(c.name for c in ExplanationRow.__table__.columns) - {"id"}


def explanation_values(row: Mapping[str, Any], index: int, now: datetime) -> dict[str, Any]:
    """Column values of one ``explanations`` row; ``index`` names the row in errors."""
    unknown = sorted(set(row) - _EXPLANATION_COLUMNS)
    if unknown:
        raise StoreError(
            f"explanation {index}: unknown column(s) {unknown}; "
            f"allowed: {sorted(_EXPLANATION_COLUMNS)}"
        )
    missing = [name for name in _EXPLANATION_REQUIRED if name not in row]
    if missing:
        raise StoreError(f"explanation {index}: missing column(s) {missing}")
    try:
        return {
            "prediction_id": str(row["prediction_id"]),
            "model": str(row["model"]),
            "version": str(row["version"]),
            "segment": str(row.get("segment", "")),
            "event_time": to_datetime(row["event_time"], f"explanation {index}: event_time"),
            "window_start": to_datetime(row["window_start"], f"explanation {index}: window_start"),
            "features": dict(row["features"]),
            "prediction": float(row["prediction"]),
            "base_value": float(row["base_value"]),
            "shap_values": {str(k): float(v) for k, v in dict(row["shap_values"]).items()},
            "explainer": str(row["explainer"]),
            "background_hash": str(row.get("background_hash", "")),
            "duration_ms": float(row["duration_ms"]),
            "reason": str(row.get("reason", "base_rate")),
            "created_at": to_datetime(
                row.get("created_at", now), f"explanation {index}: created_at"
            ),
        }
    except (TypeError, ValueError) as error:
        raise StoreError(f"explanation {index}: {error}") from error


def explanation_record(row: ExplanationRow) -> ExplanationRecord:
    """An :class:`ExplanationRecord` from an ``ExplanationRow``."""
    return ExplanationRecord(
        prediction_id=row.prediction_id,
        model=row.model,
        version=row.version,
        segment=row.segment,
        event_time=row.event_time,
        window_start=row.window_start,
        features=row.features,
        prediction=row.prediction,
        base_value=row.base_value,
        shap_values={k: (float("nan") if v is None else v) for k, v in row.shap_values.items()},
        explainer=row.explainer,
        background_hash=row.background_hash,
        duration_ms=row.duration_ms,
        reason=row.reason,
        created_at=row.created_at,
    )
