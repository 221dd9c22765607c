"""Incidents in the store: what the app lists and opens, and its one write (notes).

Incidents are recorded by the Alertmanager webhook receiver (``alerts.receiver``);
:class:`IncidentStore` (mixed into :class:`~monitor.store.Store`) reads them and
stores the notes that acknowledge or resolve them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from monitor.store.errors import StoreError
from monitor.store.schema import IncidentNoteRow, IncidentRow

__all__ = ["INCIDENT_COLUMNS", "NOTE_ACTIONS", "IncidentStore", "NoteRejected"]

INCIDENT_COLUMNS = (
    "id",
    "fingerprint",
    "alertname",
    "status",
    "severity",
    "model",
    "version",
    "segment",
    "feature",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "updated_at",
)
NOTE_ACTIONS = ("note", "acknowledge", "resolve")
# The app caps notes lower (app.max_note_chars); this bounds any other writer.
MAX_NOTE_CHARS = 100_000


class NoteRejected(StoreError):
    """A note that cannot be stored as given; the message says what to change."""


class IncidentStore:
    """Reads of ``incidents`` and ``incident_notes``, and notes (a mixin: needs ``self.transaction``)."""

    def incident_rows(
        self,
        status: tuple[str, ...] | None = None,
        model: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Incidents, newest first; optionally by status, model and overlap with [start, end)."""
        query = select(*[getattr(IncidentRow, c) for c in INCIDENT_COLUMNS])
        if status:
            query = query.where(IncidentRow.status.in_(status))
        if model:
            query = query.where(IncidentRow.model == model)
        if end is not None:
            query = query.where(IncidentRow.starts_at < end)
        if start is not None:
            query = query.where(IncidentRow.ends_at.is_(None) | (IncidentRow.ends_at >= start))
        query = query.order_by(IncidentRow.starts_at.desc(), IncidentRow.id.desc()).limit(
            max(0, int(limit))
        )
        with self.transaction("incidents") as session:  # type: ignore[attr-defined]
            return [dict(row._mapping) for row in session.execute(query)]

    def incident_detail(self, incident_id: int) -> dict[str, Any] | None:
        """One incident with its ``notes`` (oldest first), or None."""
        with self.transaction("incident") as session:  # type: ignore[attr-defined]
            row = session.execute(
                select(*[getattr(IncidentRow, c) for c in INCIDENT_COLUMNS]).where(
                    IncidentRow.id == incident_id
                )
            ).first()
            if row is None:
                return None
            found = dict(row._mapping)
            notes = session.execute(
                select(
                    IncidentNoteRow.author,
                    IncidentNoteRow.action,
                    IncidentNoteRow.text,
                    IncidentNoteRow.created_at,
                )
                .where(IncidentNoteRow.incident_id == incident_id)
                .order_by(IncidentNoteRow.created_at, IncidentNoteRow.id)
            )
            found["notes"] = [dict(note._mapping) for note in notes]
        return found

    def add_note(self, incident_id: int, author: str, action: str, text: str) -> str:
        """Store a note on an incident; acknowledge or resolve it. Returns the new status.

        The note and the status change are one transaction, so the incident never
        shows a status without the note that explains it.

        Raises
        ------
        NoteRejected
            No author, an author over 128 characters, an unknown action, or an
            incident that no longer exists.
        """
        author = author.strip()
        if not author:
            raise NoteRejected("author: enter your name so that others know who did this")
        if len(author) > 128:
            raise NoteRejected("author: at most 128 characters")
        if len(text) > MAX_NOTE_CHARS:
            raise NoteRejected(f"text: {len(text)} characters, at most {MAX_NOTE_CHARS}")
        if action not in NOTE_ACTIONS:
            raise NoteRejected(
                f"action: {action!r} is not allowed; allowed: {', '.join(NOTE_ACTIONS)}"
            )
        now = datetime.now(UTC)
        with self.transaction("add_note", write=True) as session:  # type: ignore[attr-defined]
            incident = session.get(IncidentRow, incident_id)
            if incident is None:
                raise NoteRejected(f"incident {incident_id} no longer exists")
            if action == "acknowledge" and incident.status == "firing":
                incident.status = "acknowledged"
            elif action == "resolve":
                incident.status = "resolved"
                if incident.ends_at is None:
                    incident.ends_at = now
            incident.updated_at = now
            session.add(
                IncidentNoteRow(
                    incident_id=incident_id,
                    author=author,
                    action=action,
                    text=text.strip(),
                    created_at=now,
                )
            )
            return incident.status
