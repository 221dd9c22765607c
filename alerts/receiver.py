"""The Alertmanager webhook receiver: alerts become incidents in the store.

The daemon mounts :func:`handle_webhook` at ``POST /api/v1/alerts``; Alertmanager
sends every driftd alert there (see :mod:`alerts.alertmanager`), firing and
resolved. Each alert is recorded once per (fingerprint, startsAt) — the same
alert re-sent every ``repeat_interval`` updates its incident instead of opening
a new one — and a resolved notification closes the incident (``status =
resolved``, ``ends_at``). The investigation app reads the incidents.

Bad input is answered with 400 and the reason (Alertmanager logs it and does not
retry); a store failure is answered with 503 so that Alertmanager retries.

>>> handle_webhook(b'{"version": "3"}', session_factory=None)
(400, b'{"error":"version: expected \\\\"4\\\\" (Alertmanager webhook payload v4), got \\\\"3\\\\""}')
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import exc, false, select, update
from sqlalchemy.orm import Session

from alerts.errors import WebhookError
from monitor.store.schema import IncidentRow

__all__ = [
    "MAX_ALERTS",
    "MAX_BODY_BYTES",
    "AlertNotification",
    "handle_webhook",
    "parse_payload",
    "record_alerts",
    "record_notification",
]

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_ALERTS = 1000
MAX_LABELS = 64
MAX_TEXT = 4096
_STATUSES = ("firing", "resolved")
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
# RFC 3339 as Alertmanager writes it (Go time.Time: up to nanoseconds).
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
# Columns of IncidentRow filled from labels, with their widths.
_LABEL_COLUMNS = {
    "alertname": 128,
    "severity": 16,
    "model": 128,
    "version": 64,
    "segment": 600,
    "feature": 256,
}

SessionFactory = Callable[[], Session]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertNotification:
    """One alert of a webhook payload, validated."""

    status: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None


def _parse_time(value: Any, key: str) -> datetime | None:
    """RFC 3339 -> aware UTC datetime; Go's zero time (``0001-01-01...``) -> None."""
    if not isinstance(value, str):
        raise WebhookError(f"{key}: expected an RFC 3339 string, got {type(value).__name__}")
    match = _RFC3339.match(value)
    if match is None:
        raise WebhookError(f"{key}: {value[:64]!r} is not an RFC 3339 time")
    date, clock, fraction, zone = match.groups()
    if date.startswith("0001-01-01"):
        return None
    micro = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}")
    except ValueError as error:
        raise WebhookError(f"{key}: {value[:64]!r} is not a valid time: {error}") from None
    return parsed.astimezone(UTC)


def _string_map(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise WebhookError(f"{key}: expected an object of strings, got {type(value).__name__}")
    if len(value) > MAX_LABELS:
        raise WebhookError(f"{key}: {len(value)} entries, at most {MAX_LABELS} allowed")
    for name, text in value.items():
        if not isinstance(text, str):
            raise WebhookError(f"{key}.{name}: expected a string, got {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise WebhookError(f"{key}.{name}: longer than {MAX_TEXT} characters")
    return dict(value)


def _parse_alert(raw: Any, index: int) -> AlertNotification:
    key = f"alerts[{index}]"
    if not isinstance(raw, dict):
        raise WebhookError(f"{key}: expected an object, got {type(raw).__name__}")
    status = raw.get("status")
    if status not in _STATUSES:
        raise WebhookError(f"{key}.status: expected one of {', '.join(_STATUSES)}, got {status!r}")
    fingerprint = raw.get("fingerprint")
    if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
        raise WebhookError(f"{key}.fingerprint: expected 1-64 hex digits, got {fingerprint!r}")
    labels = _string_map(raw.get("labels"), f"{key}.labels")
    if not labels.get("alertname"):
        raise WebhookError(f"{key}.labels.alertname: missing or empty")
    for name, width in _LABEL_COLUMNS.items():
        if len(labels.get(name, "")) > width:
            raise WebhookError(f"{key}.labels.{name}: longer than {width} characters")
    annotations = _string_map(raw.get("annotations", {}), f"{key}.annotations")
    starts_at = _parse_time(raw.get("startsAt"), f"{key}.startsAt")
    if starts_at is None:
        raise WebhookError(f"{key}.startsAt: the zero time is not a start")
    ends_at = _parse_time(raw.get("endsAt", "0001-01-01T00:00:00Z"), f"{key}.endsAt")
    return AlertNotification(status, fingerprint.lower(), labels, annotations, starts_at, ends_at)


def parse_payload(payload: Any) -> list[AlertNotification]:
    """Validate an Alertmanager webhook payload (version 4) and return its alerts.

    Raises
    ------
    WebhookError
        Naming the first offending key and what is allowed.
    """
    if not isinstance(payload, dict):
        raise WebhookError(f"body: expected a JSON object, got {type(payload).__name__}")
    version = payload.get("version")
    if version != "4":
        shown = (
            orjson.dumps(version).decode()
            if isinstance(version, (str, int, float, type(None)))
            else "?"
        )
        raise WebhookError(f'version: expected "4" (Alertmanager webhook payload v4), got {shown}')
    if payload.get("status") not in _STATUSES:
        raise WebhookError(
            f"status: expected one of {', '.join(_STATUSES)}, got {payload.get('status')!r}"
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise WebhookError(f"alerts: expected a list, got {type(alerts).__name__}")
    if len(alerts) > MAX_ALERTS:
        raise WebhookError(f"alerts: {len(alerts)} alerts, at most {MAX_ALERTS} per notification")
    return [_parse_alert(raw, i) for i, raw in enumerate(alerts)]


def _find(session: Session, alert: AlertNotification) -> IncidentRow | None:
    return session.scalar(
        select(IncidentRow).where(
            IncidentRow.fingerprint == alert.fingerprint, IncidentRow.starts_at == alert.starts_at
        )
    )


def _update(row: IncidentRow, alert: AlertNotification, now: datetime) -> None:
    if alert.status == "resolved":
        row.status = "resolved"
        row.ends_at = alert.ends_at or now
    elif row.status == "resolved":
        # The same alert (same start) firing again: Alertmanager had resolved it, e.g.
        # after its resolve_timeout while Prometheus could not reach it. Reopen.
        row.status = "firing"
        row.ends_at = None
    # A firing repeat keeps an acknowledgement; annotations follow the latest text.
    row.annotations = alert.annotations
    row.updated_at = now


def _insert(session: Session, alert: AlertNotification, now: datetime) -> IncidentRow:
    labels = alert.labels
    row = IncidentRow(
        fingerprint=alert.fingerprint,
        alertname=labels["alertname"],
        status=alert.status,
        severity=labels.get("severity", ""),
        model=labels.get("model", ""),
        version=labels.get("version", ""),
        segment=labels.get("segment", ""),
        feature=labels.get("feature", ""),
        labels=labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=(alert.ends_at or now) if alert.status == "resolved" else None,
        updated_at=now,
    )
    session.add(row)
    return row


def record_notification(session_factory: SessionFactory, payload: Mapping[str, Any]) -> list[int]:
    """Record the alerts of one webhook payload as incidents; the incident ids, in order.

    Idempotent: the same (fingerprint, startsAt) always maps to the same incident,
    also when two deliveries race (the loser of the unique constraint updates the
    winner's row). All alerts of a payload are written in one transaction.

    Raises
    ------
    WebhookError
        When the payload is not a valid v4 webhook payload (nothing is written).
    sqlalchemy.exc.SQLAlchemyError
        When the store fails (nothing is written).
    """
    return record_alerts(session_factory, parse_payload(payload))


def record_alerts(session_factory: SessionFactory, alerts: list[AlertNotification]) -> list[int]:
    """Record already validated alerts (see :func:`record_notification`)."""
    now = datetime.now(UTC)
    ids: list[int] = []
    with session_factory() as session, session.begin():
        if session.get_bind().dialect.name == "sqlite":
            # Take SQLite's write lock first: a transaction that reads and then writes
            # fails with "database is locked" (no busy wait) when another writer
            # committed in between, which concurrent deliveries do.
            session.execute(update(IncidentRow).where(false()).values(status="firing"))
        for alert in alerts:
            row = _find(session, alert)
            if row is None:
                try:
                    with session.begin_nested():
                        row = _insert(session, alert, now)
                except exc.IntegrityError:
                    # Another delivery inserted it between our select and insert.
                    row = _find(session, alert)
                    if row is None:
                        raise
                    _update(row, alert, now)
            else:
                _update(row, alert, now)
            session.flush()
            ids.append(row.id)
    return ids


def _reply(status: int, body: Mapping[str, Any]) -> tuple[int, bytes]:
    return status, orjson.dumps(body)


def handle_webhook(
    body: bytes,
    session_factory: SessionFactory | None,
    *,
    metrics: Any = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> tuple[int, bytes]:
    """HTTP handler for ``POST /api/v1/alerts``: (status code, JSON response body).

    200 ``{"incidents": [ids]}`` when recorded; 400 ``{"error": reason}`` for a body
    that is too large, not JSON or not a v4 payload; 503 when the store failed (so
    that Alertmanager retries).

    Parameters
    ----------
    metrics
        A :class:`monitor.metrics.PipelineMetrics`; counts notifications by status
        (``driftd_alert_notifications_total``) and store errors.
    """
    if len(body) > max_bytes:
        return _reply(400, {"error": f"body: {len(body)} bytes, at most {max_bytes} allowed"})
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return _reply(400, {"error": f"body: not JSON: {error}"})
    try:
        alerts = parse_payload(payload)
    except WebhookError as error:
        return _reply(400, {"error": str(error)})
    if session_factory is None:
        return _reply(503, {"error": "store unavailable; retry later"})
    try:
        ids = record_alerts(session_factory, alerts)
    except exc.SQLAlchemyError as error:
        if metrics is not None:
            metrics.store_errors.labels(operation="record_incident").inc()
        # The reason (database host, port, user) goes to the log, not to the caller.
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        log.warning("could not record %d alert(s): %s", len(alerts),
                    reason[0] if reason else type(error).__name__)
        return _reply(503, {"error": "store unavailable; retry later"})
    if metrics is not None:
        for alert in alerts:
            metrics.incidents.labels(status=alert.status).inc()
    return _reply(200, {"incidents": ids})
