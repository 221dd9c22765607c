"""Retention and checkpoint atomicity, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from monitor.store import StoreError, StoreUnavailable
from monitor.store.schema import (
    BaselineRow,
    CheckpointRow,
    FeatureResultRow,
    IncidentNoteRow,
    IncidentRow,
    WindowResultRow,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = 86_400.0


def _incident(fingerprint: str, status: str, ends_at: datetime | None, updated_at: datetime,
              notes: int) -> IncidentRow:
    incident = IncidentRow(
        fingerprint=fingerprint, alertname="DriftdFeatureDrift", status=status, severity="warning",
        model="churn", version="1", segment="", feature="age", labels={}, annotations={},
        starts_at=updated_at - timedelta(hours=1), ends_at=ends_at, updated_at=updated_at,
    )
    incident.notes = [
        IncidentNoteRow(author="sre", action="note", text=f"note {i}", created_at=updated_at)
        for i in range(notes)
    ]
    return incident


def test_retention_deletes_only_old_results(store, make_report):
    now = NOW.timestamp()
    old, kept = now - 40 * DAY, now - 10 * DAY
    store.write_reports([
        make_report(window_start=old, n_features=4),
        make_report(window_start=old + 300, n_features=4, segment="eu"),
        make_report(window_start=kept, n_features=4),
    ])
    base = dict(model="churn", version="1", features={}, prediction=1.0, base_value=0.0,
                shap_values={"a": 1.0}, explainer="tree", duration_ms=1.0)
    store.add_explanations([
        dict(base, prediction_id="old1", event_time=old + 1, window_start=old),
        dict(base, prediction_id="old2", event_time=old + 2, window_start=old),
        dict(base, prediction_id="new", event_time=kept + 1, window_start=kept),
    ])
    long_ago = NOW - timedelta(days=100)
    with store.session() as session, session.begin():
        session.add_all([
            _incident("a" * 16, "resolved", long_ago, long_ago, notes=2),
            _incident("b" * 16, "resolved", None, long_ago, notes=1),  # no end: last update
            _incident("c" * 16, "firing", None, long_ago, notes=1),  # still open: kept
            _incident("d" * 16, "resolved", NOW - timedelta(days=5), NOW, notes=1),
        ])
        session.add(BaselineRow(model="churn", version="0", created_at=long_ago, sha256="0" * 64,
                                profile={}))
        session.add(CheckpointRow(name="old", offsets={}, state=b"", updated_at=long_ago))

    deleted = store.apply_retention(NOW, 30)
    assert deleted == {
        "feature_results": 2 * (4 + 2),
        "window_results": 2,
        "explanations": 2,
        "concept_alarms": 0,
        "incident_notes": 3,
        "incidents": 2,
    }
    assert [w.window_start.timestamp() for w in store.windows("churn")] == [kept]
    assert len(store.feature_results("churn", 0, now)) == 4 + 2
    assert store.explanation("old1") is None and store.explanation("new") is not None
    with store.session() as session:
        left = session.execute(select(IncidentRow.fingerprint, func.count(IncidentNoteRow.id))
                               .outerjoin(IncidentRow.notes).group_by(IncidentRow.fingerprint)
                               .order_by(IncidentRow.fingerprint)).all()
        assert [(f[0], n) for f, n in left] == [("c", 1), ("d", 1)]
        assert session.scalar(select(func.count()).select_from(BaselineRow)) == 1
        assert session.scalar(select(func.count()).select_from(CheckpointRow)) == 1
        # No feature row lost its window.
        orphans = session.scalar(
            select(func.count()).select_from(FeatureResultRow)
            .where(FeatureResultRow.window_id.not_in(select(WindowResultRow.id))))
        assert orphans == 0
    assert set(store.apply_retention(NOW, 30).values()) == {0}
    with pytest.raises(StoreError, match="days must be >= 1"):
        store.apply_retention(NOW, 0)


def test_deleting_a_window_cascades_to_its_feature_rows(store, make_report):
    # The foreign key cascades on its own too (SQLite needs foreign_keys=ON for that).
    store.write_reports([make_report(n_features=3)])
    with store.session() as session, session.begin():
        session.execute(WindowResultRow.__table__.delete())
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(FeatureResultRow)) == 0


def test_failed_checkpoint_write_keeps_the_previous_one(store):
    store.save_checkpoint("driftd", {"predictions:0": 100, "labels:0": 7}, b"state-100")

    # The upsert has run in the database; then the connection "drops" before the commit.
    def fail_after_checkpoint(conn, cursor, statement, parameters, context, executemany):
        if "checkpoints" in statement:
            raise OperationalError(statement, parameters, ConnectionError("connection lost"))

    event.listen(store.engine, "after_cursor_execute", fail_after_checkpoint)
    try:
        with pytest.raises(StoreUnavailable, match="save_checkpoint"):
            store.save_checkpoint("driftd", {"predictions:0": 200, "labels:0": 9}, b"state-200")
    finally:
        event.remove(store.engine, "after_cursor_execute", fail_after_checkpoint)
    assert store.load_checkpoint("driftd") == ({"predictions:0": 100, "labels:0": 7}, b"state-100")

    # A failure on the way in (bad offsets) leaves it too.
    with pytest.raises(StoreError, match="offsets must map str to int"):
        store.save_checkpoint("driftd", {"predictions:0": "not a number"}, b"x")
    assert store.load_checkpoint("driftd") == ({"predictions:0": 100, "labels:0": 7}, b"state-100")


def test_concurrent_checkpoints_never_mix_offsets_and_state(store):
    errors: list[Exception] = []

    def save(worker: int) -> None:
        try:
            for i in range(15):
                n = worker * 1000 + i
                store.save_checkpoint("driftd", {"p:0": n, "p:1": n}, str(n).encode())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    offsets, state = store.load_checkpoint("driftd")
    assert offsets["p:0"] == offsets["p:1"] == int(state)
    assert int(state) % 1000 == 14  # the last save of one of the writers
