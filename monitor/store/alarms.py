"""Stored sequential alarms: the ``concept_alarms`` table's write and read API.

:class:`AlarmStore` is mixed into :class:`~monitor.store.Store`: ``add_alarms``
writes alarms (anything with the attributes of
:class:`monitor.truth.alarms.ConceptAlarm`), ``alarms`` reads them back as
:class:`AlarmRecord`, oldest first. Writing the same alarm twice (a replay from a
checkpoint raises it again) stores it once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from monitor.store.errors import StoreError
from monitor.store.schema import ConceptAlarmRow
from monitor.store.windows import to_datetime

__all__ = ["AlarmRecord", "AlarmStore"]

_A = ConceptAlarmRow.__table__
_KEY = ["model", "version", "segment", "detector", "stream_index", "event_time"]


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One stored alarm (times are aware UTC datetimes; statistic NaN when unknown)."""

    model: str
    version: str
    segment: str
    detector: str
    event_time: datetime
    stream_index: int
    statistic: float
    created_at: datetime


def alarm_values(alarm: Any, index: int, now: datetime) -> dict[str, Any]:
    """Column values of one alarm; ``index`` names it in errors."""
    try:
        statistic = float(getattr(alarm, "statistic", math.nan))
        return {
            "model": str(alarm.model),
            "version": str(alarm.version),
            "segment": str(getattr(alarm, "segment", "")),
            "detector": str(alarm.detector),
            "event_time": to_datetime(alarm.event_time, f"alarm {index}: event_time"),
            "stream_index": int(alarm.errors_seen),
            "statistic": statistic if math.isfinite(statistic) else None,
            "created_at": now,
        }
    except (AttributeError, TypeError, ValueError) as error:
        raise StoreError(f"alarm {index}: {error}") from error


class AlarmStore:
    """The alarm methods of :class:`~monitor.store.Store` (uses its transactions)."""

    def add_alarms(self, alarms: Sequence[Any]) -> int:
        """Insert alarms in one transaction; returns how many were new."""
        if not alarms:
            return 0
        now = datetime.now(UTC)
        values = [alarm_values(alarm, i, now) for i, alarm in enumerate(alarms)]
        upsert = self._upsert(_A)  # type: ignore[attr-defined]
        statement = upsert.on_conflict_do_nothing(index_elements=_KEY).returning(_A.c.id)
        with self.transaction("add_alarms", write=True) as session:  # type: ignore[attr-defined]
            return len(session.connection().execute(statement, values).all())

    def alarms(
        self,
        model: str,
        version: str | None = None,
        segment: str | None = None,
        start: float | datetime | None = None,
        end: float | datetime | None = None,
        limit: int = 1000,
    ) -> list[AlarmRecord]:
        """Alarms of ``model`` with ``start <= event_time < end``: the newest ``limit``,
        returned oldest first (by event time, then stream position and detector)."""
        query = select(*(_A.c[c.name] for c in _A.columns if c.name != "id")).where(_A.c.model == model)
        if version is not None:
            query = query.where(_A.c.version == version)
        if segment is not None:
            query = query.where(_A.c.segment == segment)
        if start is not None:
            query = query.where(_A.c.event_time >= to_datetime(start, "start"))
        if end is not None:
            query = query.where(_A.c.event_time < to_datetime(end, "end"))
        order = (_A.c.event_time, _A.c.stream_index, _A.c.detector)
        query = query.order_by(*(c.desc() for c in order)).limit(max(0, int(limit)))
        with self.transaction("alarms") as session:  # type: ignore[attr-defined]
            rows = session.execute(query).all()
        return [
            AlarmRecord(
                r.model, r.version, r.segment, r.detector, r.event_time, int(r.stream_index),
                math.nan if r.statistic is None else float(r.statistic), r.created_at,
            )
            for r in reversed(rows)
        ]


def retention_delete(cutoff: datetime):
    """The statement that deletes alarms older than ``cutoff`` (for ``apply_retention``)."""
    return delete(_A).where(_A.c.event_time < cutoff)
