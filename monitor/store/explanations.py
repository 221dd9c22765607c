"""Explanations in the store: validation of the rows the explainers write, and every read.

:class:`ExplanationReads` is mixed into :class:`~monitor.store.Store`; the
investigation app reads explanations through it too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from monitor.store.errors import StoreError
from monitor.store.records import ExplanationRecord
from monitor.store.schema import ExplanationRow
from monitor.store.windows import to_datetime

__all__ = [
    "EXPLANATION_LIST_COLUMNS",
    "ExplanationReads",
    "explanation_record",
    "explanation_values",
]

#: Columns of the explanation list the app shows (no feature values or SHAP maps).
EXPLANATION_LIST_COLUMNS = (
    "id",
    "prediction_id",
    "version",
    "segment",
    "event_time",
    "window_start",
    "prediction",
    "base_value",
    "reason",
    "explainer",
)

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


class ExplanationReads:
    """Reads of the ``explanations`` table (a mixin: needs ``self.transaction``)."""

    def explanation(self, prediction_id: str) -> ExplanationRecord | None:
        """The newest explanation of ``prediction_id``, or None."""
        query = (
            select(ExplanationRow)
            .where(ExplanationRow.prediction_id == prediction_id)
            .order_by(ExplanationRow.created_at.desc(), ExplanationRow.id.desc())
            .limit(1)
        )
        with self.transaction("explanation") as session:  # type: ignore[attr-defined]
            row = session.scalar(query)
            return None if row is None else explanation_record(row)

    def explanations_for_window(
        self,
        model: str,
        version: str,
        window_start: float | datetime,
        limit: int = 100,
        segment: str | None = None,
    ) -> list[ExplanationRecord]:
        """Up to ``limit`` explanations of one window, by event time."""
        query = (
            select(ExplanationRow)
            .where(
                ExplanationRow.model == model,
                ExplanationRow.version == version,
                ExplanationRow.window_start == to_datetime(window_start, "window_start"),
            )
            .order_by(ExplanationRow.event_time, ExplanationRow.id)
            .limit(max(0, int(limit)))
        )
        if segment is not None:
            query = query.where(ExplanationRow.segment == segment)
        with self.transaction("explanations_for_window") as session:  # type: ignore[attr-defined]
            return [explanation_record(row) for row in session.scalars(query)]

    def top_attributions(
        self,
        model: str,
        version: str,
        window_start: float | datetime,
        k: int = 10,
        segment: str | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` features with the largest mean |SHAP| over a window's explanations.

        The mean is over all of the window's explanations (a feature missing from
        one counts as 0 there); ties are broken by feature name.
        """
        query = select(ExplanationRow.shap_values).where(
            ExplanationRow.model == model,
            ExplanationRow.version == version,
            ExplanationRow.window_start == to_datetime(window_start, "window_start"),
        )
        if segment is not None:
            query = query.where(ExplanationRow.segment == segment)
        totals: dict[str, float] = defaultdict(float)
        n_rows = 0
        with self.transaction("top_attributions") as session:  # type: ignore[attr-defined]
            for shap_values in session.scalars(query):
                n_rows += 1
                for feature, value in shap_values.items():
                    if value is not None:
                        totals[feature] += abs(value)
        if not n_rows:
            return []
        ranked = sorted(((f, t / n_rows) for f, t in totals.items()), key=lambda x: (-x[1], x[0]))
        return ranked[: max(0, int(k))]

    def explanation_rows(
        self,
        model: str,
        version: str | None,
        start: datetime,
        end: datetime,
        search: str = "",
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Explained predictions of a model in windows starting in [start, end), newest first.

        ``search`` matches prediction ids by prefix across the whole store when set
        (the id is what a user copies from a log line). Columns:
        :data:`EXPLANATION_LIST_COLUMNS`.
        """
        query = select(*[getattr(ExplanationRow, c) for c in EXPLANATION_LIST_COLUMNS]).where(
            ExplanationRow.model == model
        )
        if search:
            query = query.where(ExplanationRow.prediction_id.startswith(search, autoescape=True))
        else:
            query = query.where(
                ExplanationRow.window_start >= start, ExplanationRow.window_start < end
            )
            if version is not None:
                query = query.where(ExplanationRow.version == version)
        query = query.order_by(ExplanationRow.event_time.desc()).limit(max(0, int(limit)))
        with self.transaction("explanation_rows") as session:  # type: ignore[attr-defined]
            return [dict(row._mapping) for row in session.execute(query)]

    def explanation_detail(self, explanation_id: int) -> dict[str, Any] | None:
        """Features and SHAP values of one explanation by row id, or None."""
        query = select(
            ExplanationRow.prediction_id,
            ExplanationRow.features,
            ExplanationRow.prediction,
            ExplanationRow.base_value,
            ExplanationRow.shap_values,
            ExplanationRow.explainer,
            ExplanationRow.event_time,
        ).where(ExplanationRow.id == int(explanation_id))
        with self.transaction("explanation_detail") as session:  # type: ignore[attr-defined]
            row = session.execute(query).first()
        return None if row is None else dict(row._mapping)
