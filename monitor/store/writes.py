"""The store's writes: baselines, window results, explanations, checkpoints, retention.

:class:`StoreWrites` is mixed into :class:`~monitor.store.Store`. Every method is
one write transaction (SQLite ``BEGIN IMMEDIATE``), uses bound parameters only and
raises :class:`StoreError` on database errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, delete, exc, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from monitor.results import WindowReport
from monitor.store.alarms import retention_delete
from monitor.store.errors import BaselineExists, StoreError
from monitor.store.explanations import explanation_values
from monitor.store.schema import (
    BaselineRow,
    CheckpointRow,
    ExplanationRow,
    FeatureResultRow,
    IncidentNoteRow,
    IncidentRow,
    WindowResultRow,
)
from monitor.store.windows import feature_values, to_datetime, window_values

__all__ = ["StoreWrites"]

_W = WindowResultRow.__table__
_F = FeatureResultRow.__table__
_E = ExplanationRow.__table__
_WINDOW_KEY = ("model", "version", "segment", "window_start")
# Bound parameters per IN (...) list: far below SQLite's 32766-variable limit.
_IN_CHUNK = 1000


class StoreWrites:
    """Write operations of the store (a mixin: needs ``self.transaction``, ``self.engine``)."""

    def _upsert(self, table):
        """The dialect's INSERT that supports ``on_conflict_do_update``."""
        if self.engine.dialect.name == "postgresql":  # type: ignore[attr-defined]
            return postgresql.insert(table)
        return sqlite.insert(table)

    def save_baseline(self, model: str, version: str, profile: Mapping[str, Any]) -> str:
        """Store the reference profile of a model version; returns its sha256.

        Saving the identical profile again is a no-op. A different profile for a
        stored (model, version) is refused: baselines are never replaced silently.

        Raises
        ------
        BaselineExists
            When a different profile is stored for ``model`` / ``version``.
        """
        _check_name("model", model, 128)
        _check_name("version", version, 64)
        try:
            # The same canonical form as monitor.baseline.Baseline.sha256.
            payload = orjson.dumps(
                profile, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
            )
        except TypeError as error:
            raise StoreError(
                f"baseline {model} {version}: profile is not JSON-serialisable: {error}"
            ) from error
        digest = hashlib.sha256(payload).hexdigest()
        for _attempt in range(2):
            try:
                with self.transaction("save_baseline", write=True) as session:
                    stored = session.scalar(
                        select(BaselineRow.sha256).where(
                            BaselineRow.model == model, BaselineRow.version == version
                        )
                    )
                    if stored is not None:
                        if stored != digest:
                            raise BaselineExists(model, version, stored, digest)
                        return digest
                    session.add(
                        BaselineRow(
                            model=model,
                            version=version,
                            created_at=_now(),
                            sha256=digest,
                            profile=orjson.loads(payload),
                        )
                    )
                return digest
            except StoreError as error:
                # Another process stored the same (model, version) between our read
                # and our insert: look again, the second pass decides.
                if not isinstance(error.__cause__, exc.IntegrityError):
                    raise
        raise StoreError(f"save_baseline {model} {version}: conflicting concurrent writes")

    def write_reports(self, reports: Sequence[WindowReport]) -> int:
        """Insert or replace windows and their feature rows, in one transaction.

        A window is keyed by (model, version, segment, window_start): it is written
        when it closes and rewritten, feature rows included, when labels or
        explanations complete it. Within one call the last report of a key wins.
        Returns the number of windows written.
        """
        if not reports:
            return 0
        now = _now()
        latest: dict[tuple, dict[str, Any]] = {}
        by_key: dict[tuple, WindowReport] = {}
        for report in reports:
            values = window_values(report, now)
            key = tuple(values[c] for c in _WINDOW_KEY)
            latest[key] = values
            by_key[key] = report
        upsert = self._upsert(_W)
        updatable = [c.name for c in _W.columns if c.name not in ("id", *_WINDOW_KEY)]
        statement = upsert.on_conflict_do_update(
            index_elements=list(_WINDOW_KEY),
            set_={name: upsert.excluded[name] for name in updatable},
        ).returning(_W.c.id, *(_W.c[c] for c in _WINDOW_KEY))
        with self.transaction("write_reports", write=True) as session:
            connection = session.connection()
            ids = {
                tuple(row[1:]): row[0]
                for row in connection.execute(statement, list(latest.values()))
            }
            window_ids = list(ids.values())
            for chunk in _chunks(window_ids, _IN_CHUNK):
                connection.execute(delete(_F).where(_F.c.window_id.in_(chunk)))
            features = [
                row
                for key, report in by_key.items()
                for row in feature_values(report, ids[key], key[3])
            ]
            if features:
                connection.execute(insert(_F), features)
        return len(latest)

    def add_explanations(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert explanations in one transaction; returns how many were new.

        Each row maps :class:`~monitor.store.schema.ExplanationRow` column names to
        values; ``event_time`` and ``window_start`` may be epoch seconds or
        datetimes; ``segment``, ``background_hash``, ``reason`` and ``created_at``
        may be left out. A row whose (prediction_id, created_at) is already stored
        is skipped, so retrying a batch never stores an explanation twice.

        Raises
        ------
        StoreError
            When a row has an unknown column or lacks a required one (nothing is
            written then).
        """
        if not rows:
            return 0
        now = _now()
        values = [explanation_values(row, index, now) for index, row in enumerate(rows)]
        upsert = self._upsert(_E)
        statement = upsert.on_conflict_do_nothing(
            index_elements=["prediction_id", "created_at"]
        ).returning(_E.c.id)
        with self.transaction("add_explanations", write=True) as session:
            return len(session.connection().execute(statement, values).all())

    def save_checkpoint(self, name: str, offsets: Mapping[str, int], state: bytes) -> None:
        """Replace checkpoint ``name``: consumer offsets and state, in one transaction.

        Either both the offsets and the state of this call are stored or, on any
        error, the previous checkpoint stays as it was.
        """
        _check_name("checkpoint name", name, 256)
        try:
            values = {
                "name": name,
                "offsets": {str(k): int(v) for k, v in offsets.items()},
                "state": bytes(state),
                "updated_at": _now(),
            }
        except (TypeError, ValueError) as error:
            raise StoreError(
                f"checkpoint {name}: offsets must map str to int and state be bytes: {error}"
            ) from error
        table = CheckpointRow.__table__
        upsert = self._upsert(table)
        statement = upsert.values(values).on_conflict_do_update(
            index_elements=["name"],
            set_={c: upsert.excluded[c] for c in ("offsets", "state", "updated_at")},
        )
        with self.transaction("save_checkpoint", write=True) as session:
            session.execute(statement)

    def apply_retention(self, now: datetime, days: int) -> dict[str, int]:
        """Delete results older than ``days`` before ``now``; returns rows deleted per table.

        Removed: windows that started before the cut-off with their feature rows,
        explanations of such windows, sequential alarms raised before it, and
        resolved incidents (with their notes) that ended before it. Baselines and checkpoints are never removed; firing
        or acknowledged incidents are kept however old.
        """
        if int(days) < 1:
            raise StoreError(f"retention days must be >= 1, got {days!r}")
        cutoff = to_datetime(now, "now") - timedelta(days=int(days))
        windows = select(WindowResultRow.id).where(WindowResultRow.window_start < cutoff)
        resolved = select(IncidentRow.id).where(
            IncidentRow.status == "resolved",
            or_(
                IncidentRow.ends_at < cutoff,
                and_(IncidentRow.ends_at.is_(None), IncidentRow.updated_at < cutoff),
            ),
        )
        deleted: dict[str, int] = {}
        with self.transaction("apply_retention", write=True) as session:
            connection = session.connection()
            # Children first, explicitly, so that the counts are exact (the foreign
            # keys cascade too).
            for table, statement in (
                (
                    "feature_results",
                    delete(_F).where(_F.c.window_id.in_(windows.scalar_subquery())),
                ),
                ("window_results", delete(_W).where(_W.c.window_start < cutoff)),
                ("explanations", delete(_E).where(_E.c.window_start < cutoff)),
                ("concept_alarms", retention_delete(cutoff)),
                (
                    "incident_notes",
                    delete(IncidentNoteRow.__table__).where(
                        IncidentNoteRow.__table__.c.incident_id.in_(resolved.scalar_subquery())
                    ),
                ),
                (
                    "incidents",
                    delete(IncidentRow.__table__).where(
                        IncidentRow.__table__.c.id.in_(resolved.scalar_subquery())
                    ),
                ),
            ):
                deleted[table] = connection.execute(statement).rowcount
        return deleted


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_name(what: str, value: Any, max_length: int) -> None:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise StoreError(
            f"{what} must be a non-empty string of at most {max_length} characters, got {value!r}"
        )
