"""Alembic migrations: an empty database, and one at each previous revision with data in it."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text

from monitor.store import open_store
from monitor.store.schema import Base

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEAD = "0007"


def schema_diff(store) -> list:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_empty_database_upgrades_to_head_and_matches_the_models(store_url):
    store = open_store(store_url, create=False)
    try:
        assert store.current_revision() is None
        assert store.head_revision() == HEAD
        assert store.migrate() == HEAD
        assert schema_diff(store) == []
        assert store.migrate() == HEAD  # a second start changes nothing
        assert schema_diff(store) == []
    finally:
        store.close()


def _fill_revision_0001(store) -> None:
    """Rows as driftd wrote them at revision 0001 (plain SQL on the reflected tables)."""
    meta = MetaData()
    with store.engine.begin() as conn:
        meta.reflect(conn)
        t = meta.tables
        common = dict(
            model="churn", version="1", segment="", window_end=T0, closed_at=T0, updated_at=T0,
            n_events=100, n_labels=0, drift_share=0.5, drift_score=0.5, model_drifted=True,
            performance={}, baseline_performance={}, estimated_performance={}, calibration={},
            baseline_calibration={}, attribution={},
        )
        conn.execute(t["window_results"].insert(), [
            dict(common, id=1, window_start=T0.replace(hour=0)),
            dict(common, id=2, window_start=T0.replace(hour=1)),
        ])
        feature = dict(model="churn", kind="numeric", method="psi", score=0.3, p_value=None,
                       threshold=0.2, missing_ratio=0.0, unseen_ratio=None, counts=[1, 2])
        conn.execute(t["feature_results"].insert(), [
            # Window 1: two drifted inputs; drifted prediction and label do not count.
            dict(feature, window_id=1, window_start=T0, feature="a", drifted=True),
            dict(feature, window_id=1, window_start=T0, feature="b", drifted=True),
            dict(feature, window_id=1, window_start=T0, feature="c", drifted=False),
            dict(feature, window_id=1, window_start=T0, feature="__prediction__", drifted=True),
            dict(feature, window_id=1, window_start=T0, feature="__label__", drifted=True),
            dict(feature, window_id=2, window_start=T0, feature="a", drifted=False),
        ])
        explanation = dict(model="churn", version="1", segment="", event_time=T0, window_start=T0,
                           features={"a": 1}, prediction=1.0, base_value=0.5,
                           shap_values={"a": 0.5}, explainer="tree", background_hash="",
                           duration_ms=1.0, reason="base_rate")
        conn.execute(t["explanations"].insert(), [
            dict(explanation, id=1, prediction_id="p1", created_at=T0),
            dict(explanation, id=2, prediction_id="p1", created_at=T0),  # a retried duplicate
            dict(explanation, id=3, prediction_id="p1", created_at=T0.replace(minute=5)),
            dict(explanation, id=4, prediction_id="p2", created_at=T0),
        ])
        conn.execute(t["checkpoints"].insert(), [
            dict(name="driftd", offsets={"p:0": 5}, state=b"s", updated_at=T0)
        ])


def test_upgrade_from_previous_revisions_keeps_and_backfills_data(store_url):
    store = open_store(store_url, create=False)
    try:
        assert store.migrate("0001") == "0001"
        _fill_revision_0001(store)

        assert store.migrate("0002") == "0002"
        with store.engine.connect() as conn:
            counts = dict(conn.execute(
                text("select id, n_drifted_features from window_results order by id")).all())
            assert counts == {1: 2, 2: 0}
            assert conn.execute(text("select count(*) from feature_results")).scalar() == 6
            assert conn.execute(text("select count(*) from explanations")).scalar() == 4

        assert store.migrate() == HEAD
        with store.engine.connect() as conn:
            kept = conn.execute(text("select id from explanations order by id")).scalars().all()
        assert kept == [1, 3, 4]  # the duplicate went, the oldest copy stayed
        assert schema_diff(store) == []

        # The current API reads what the old revision wrote.
        first, second = store.windows("churn")
        assert (first.n_drifted_features, second.n_drifted_features) == (2, 0)
        report = store.window_report("churn", "1", "", T0)
        assert [r.feature for r in report.features] == ["a", "b", "c"]
        assert [r.feature for r in report.prediction] == ["__prediction__"]
        assert store.explanation("p1").created_at == T0.replace(minute=5)
        assert store.load_checkpoint("driftd") == ({"p:0": 5}, b"s")
    finally:
        store.close()


def test_downgrade_to_base_and_back(store, make_report):
    store.write_reports([make_report()])
    assert store.downgrade("0001") == "0001"
    with store.engine.connect() as conn:
        # On SQLite the table rebuild must not cascade into the feature rows.
        assert conn.execute(text("select count(*) from feature_results")).scalar() == 7
        assert "n_drifted_features" not in {
            c["name"] for c in inspect(conn).get_columns("window_results")}
    assert store.migrate() == HEAD
    assert store.windows("churn")[0].n_drifted_features == sum(
        r.drifted for r in make_report().features)
    assert store.downgrade("base") is None
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    assert store.migrate() == HEAD
    assert schema_diff(store) == []
