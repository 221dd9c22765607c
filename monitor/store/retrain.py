"""Stored retrain requests: the ``retrain_requests`` table's write and read API.

:class:`RetrainStore` is mixed into :class:`~monitor.store.Store`. The cooldown is
enforced here, in one transaction per model: :meth:`RetrainStore.insert_retrain_request`
takes a per-model lock (PostgreSQL: a transaction-scoped advisory lock; SQLite: the
database write lock of ``BEGIN IMMEDIATE``), looks for a request of the model newer
than ``now - cooldown`` and inserts one only when there is none. Only the daemon whose
insert committed publishes the request, so two daemons or a restarted one never emit a
second request within the cooldown.

Publishing happens after the commit. ``claimed_at`` marks who is publishing;
``published_at`` is set once the broker acknowledged. A row left unpublished by a
crash is claimed again (:meth:`RetrainStore.claim_unpublished_retrain`) once its claim
is older than a lease, and published then.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, text, update

from monitor.store.errors import StoreError
from monitor.store.schema import RetrainRequestRow

__all__ = [
    "RETRAIN_STATUSES",
    "RetrainRecord",
    "RetrainRequestClosed",
    "RetrainRequestNotFound",
    "RetrainStore",
]

_R = RetrainRequestRow.__table__
RETRAIN_STATUSES = ("requested", "acknowledged", "rejected")


class RetrainRequestNotFound(StoreError):
    """No retrain request has this id."""


class RetrainRequestClosed(StoreError):
    """The request was already acknowledged or rejected; its decision is not changed."""


@dataclass(frozen=True, slots=True)
class RetrainRecord:
    """One stored retrain request (times are aware UTC datetimes)."""

    id: int
    request_id: str
    model: str
    version: str
    segment: str
    reason: str
    created_at: datetime
    payload: dict[str, Any]
    status: str
    note: str
    acted_at: datetime | None
    claimed_at: datetime | None
    published_at: datetime | None


def _record(row: Any) -> RetrainRecord:
    return RetrainRecord(
        int(row.id), row.request_id, row.model, row.version, row.segment, row.reason, row.created_at,
        dict(row.payload or {}), row.status, row.note or "", row.acted_at, row.claimed_at, row.published_at,
    )


def _lock_key(model: str) -> int:
    # A stable signed 32-bit key per model for pg_advisory_xact_lock.
    return zlib.crc32(f"driftd.retrain:{model}".encode()) - 2**31


class RetrainStore:
    """The retrain-request methods of :class:`~monitor.store.Store` (uses its transactions)."""

    def insert_retrain_request(
        self,
        *,
        model: str,
        version: str,
        segment: str,
        reason: str,
        now: datetime,
        cooldown_seconds: float,
        build_payload: Callable[[str, datetime], dict[str, Any]],
    ) -> tuple[RetrainRecord | None, datetime | None]:
        """Insert a request unless ``model`` has one newer than ``now - cooldown_seconds``.

        Parameters
        ----------
        build_payload
            ``(request_id, created_at) -> payload``: the event, built once the id is known.

        Returns
        -------
        (record, None) when this call inserted the request (the caller publishes it);
        (None, created_at) with the creation time of the request that holds the cooldown.
        """
        since = now - timedelta(seconds=float(cooldown_seconds))
        with self.transaction("insert_retrain_request", write=True) as session:  # type: ignore[attr-defined]
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(model)})
            latest = session.execute(
                select(_R.c.created_at).where(_R.c.model == model, _R.c.created_at > since)
                .order_by(_R.c.created_at.desc()).limit(1)
            ).scalar_one_or_none()
            if latest is not None:
                return None, latest
            request_id = str(uuid.uuid4())
            values = {
                "request_id": request_id, "model": model, "version": version, "segment": segment,
                "reason": reason, "created_at": now, "payload": build_payload(request_id, now),
                "status": "requested", "note": "", "acted_at": None, "claimed_at": now, "published_at": None,
            }
            new_id = session.execute(_R.insert().values(**values).returning(_R.c.id)).scalar_one()
        return RetrainRecord(id=int(new_id), **values), None  # type: ignore[arg-type]

    def mark_retrain_published(self, request_id: str, now: datetime) -> None:
        """Record that the broker acknowledged request ``request_id``."""
        with self.transaction("mark_retrain_published", write=True) as session:  # type: ignore[attr-defined]
            session.execute(update(_R).where(_R.c.request_id == request_id).values(published_at=now))

    def claim_unpublished_retrain(self, now: datetime, lease_seconds: float, limit: int = 20) -> list[RetrainRecord]:
        """Claim requests never acknowledged by the broker whose claim is older than the lease.

        A claim is an UPDATE conditioned on the claim read, so of two daemons claiming
        at once exactly one gets each row.
        """
        stale = now - timedelta(seconds=float(lease_seconds))
        claimed: list[RetrainRecord] = []
        with self.transaction("claim_unpublished_retrain", write=True) as session:  # type: ignore[attr-defined]
            rows = session.execute(
                select(_R).where(_R.c.published_at.is_(None), or_(_R.c.claimed_at.is_(None), _R.c.claimed_at < stale))
                .order_by(_R.c.id).limit(max(0, int(limit)))
            ).all()
            for row in rows:
                condition = _R.c.claimed_at.is_(None) if row.claimed_at is None else _R.c.claimed_at == row.claimed_at
                result = session.execute(
                    update(_R).where(_R.c.id == row.id, _R.c.published_at.is_(None), condition).values(claimed_at=now)
                )
                if result.rowcount == 1:
                    claimed.append(_record(row))
        return claimed

    def retrain_requests(
        self, model: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[RetrainRecord]:
        """The newest ``limit`` requests (optionally of one model and status), newest first."""
        query = select(_R)
        if model is not None:
            query = query.where(_R.c.model == model)
        if status is not None:
            query = query.where(_R.c.status == status)
        query = query.order_by(_R.c.created_at.desc(), _R.c.id.desc()).limit(max(0, int(limit)))
        with self.transaction("retrain_requests") as session:  # type: ignore[attr-defined]
            return [_record(r) for r in session.execute(query).all()]

    def retrain_request(self, key: int | str) -> RetrainRecord | None:
        """One request by its number (``id``) or its ``request_id`` (UUID); None when unknown."""
        column, value = (_R.c.id, int(key)) if str(key).isdigit() else (_R.c.request_id, str(key))
        with self.transaction("retrain_request") as session:  # type: ignore[attr-defined]
            row = session.execute(select(_R).where(column == value)).one_or_none()
        return None if row is None else _record(row)

    def act_on_retrain_request(self, key: int | str, status: str, note: str, now: datetime) -> RetrainRecord:
        """Acknowledge or reject a request that is still ``requested``.

        Raises
        ------
        RetrainRequestNotFound
            No request has this id.
        RetrainRequestClosed
            It was already acknowledged or rejected.
        """
        if status not in ("acknowledged", "rejected"):
            raise StoreError(f"status {status!r}: allowed acknowledged, rejected")
        column, value = (_R.c.id, int(key)) if str(key).isdigit() else (_R.c.request_id, str(key))
        with self.transaction("act_on_retrain_request", write=True) as session:  # type: ignore[attr-defined]
            row = session.execute(select(_R).where(column == value)).one_or_none()
            if row is None:
                raise RetrainRequestNotFound(f"no retrain request {key}; `driftd retrain list` shows them")
            if row.status != "requested":
                raise RetrainRequestClosed(
                    f"retrain request {row.id} is already {row.status}"
                    + (f" ({row.note})" if row.note else "") + "; its decision is not changed"
                )
            session.execute(
                update(_R).where(_R.c.id == row.id, _R.c.status == "requested")
                .values(status=status, note=note, acted_at=now)
            )
        record = self.retrain_request(int(row.id))
        assert record is not None
        return record
