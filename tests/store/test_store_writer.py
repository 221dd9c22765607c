"""StoreWriter: order, batching, bad items, and outages of the real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from monitor.metrics import PipelineMetrics
from monitor.store import StoreError, open_store
from monitor.store.schema import ExplanationRow, FeatureResultRow, WindowResultRow
from monitor.store.writer import StoreWriter

T0 = 1_767_225_600.0


def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def explanation(pid: str) -> dict:
    return dict(prediction_id=pid, model="churn", version="1", event_time=T0 + 1,
                window_start=T0, features={"a": 1.0}, prediction=1.0, base_value=0.5,
                shap_values={"a": 0.5}, explainer="tree", duration_ms=1.0)


def counts(store) -> tuple[int, int, int]:
    with store.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table))
            for table in (WindowResultRow, FeatureResultRow, ExplanationRow)
        )


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels or None)


def test_writer_stores_everything_and_checkpoints_after_what_came_before(store, make_report):
    registry = CollectorRegistry()
    writer = StoreWriter(store, metrics=PipelineMetrics(registry), batch_size=7)
    reports = [make_report(window_start=T0 + 300 * i, n_features=3) for i in range(20)]
    saved: list[tuple[dict, int]] = []

    def on_saved(name, offsets):
        # Runs once the checkpoint holds: every report queued before it is stored.
        saved.append((offsets, len(store.windows("churn"))))

    writer.write_reports(reports[:10])
    writer.save_checkpoint("driftd", {"p:0": 10}, b"ten", on_saved=on_saved)
    writer.write_reports(reports[10:])
    writer.add_explanations([explanation(f"p{i}") for i in range(5)])
    writer.save_checkpoint("driftd", {"p:0": 20}, b"twenty", on_saved=on_saved)
    assert writer.flush(30)
    assert writer.healthy and writer.pending == 0
    assert saved[-1] == ({"p:0": 20}, 20)
    assert all(n_windows >= offsets["p:0"] for offsets, n_windows in saved)
    assert counts(store) == (20, 20 * 5, 5)
    assert store.load_checkpoint("driftd") == ({"p:0": 20}, b"twenty")
    assert writer.written == {
        "write_reports": 20, "add_explanations": 5, "add_alarms": 0, "save_checkpoint": len(saved)
    }
    assert sample(registry, "driftd_checkpoints_total") == len(saved)
    assert sample(registry, "driftd_store_pending_writes") == 0
    assert sample(registry, "driftd_store_errors_total", operation="write_reports") is None
    assert writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.write_reports(reports[:1])


def test_a_bad_report_is_dropped_and_the_rest_written(store, make_report):
    registry = CollectorRegistry()
    errors = []
    writer = StoreWriter(store, metrics=PipelineMetrics(registry), backoff_initial=0.01,
                         backoff_max=0.02, on_error=lambda op, exc: errors.append(op))
    bad = make_report(window_start=T0 + 300)
    bad.window_end = float("nan")
    writer.write_reports([make_report(window_start=T0), bad, make_report(window_start=T0 + 600)])
    assert writer.flush(30)
    assert [w.window_start.timestamp() for w in store.windows("churn")] == [T0, T0 + 600]
    assert writer.dropped == {"write_reports": 1, "add_explanations": 0, "add_alarms": 0, "save_checkpoint": 0}
    assert sample(registry, "driftd_capacity_dropped_total", cap="store_pending") == 1
    # Three attempts on the batch, then one on the bad report alone.
    assert sample(registry, "driftd_store_errors_total", operation="write_reports") == 4
    assert errors == ["write_reports"] * 4
    assert writer.healthy  # the last attempt (the third report) succeeded
    writer.close()


def test_a_retried_commit_stores_explanations_once(store):
    writer = StoreWriter(store, backoff_initial=0.01, backoff_max=0.02)
    lost = []

    # The first commit reaches the database, but the client never hears back.
    def lose_first_ack(session):
        if not lost:
            lost.append(True)
            raise OperationalError("COMMIT", None, ConnectionError("connection lost"))

    event.listen(Session, "after_commit", lose_first_ack)
    try:
        writer.add_explanations([explanation(f"p{i}") for i in range(10)])
        assert writer.flush(30)
    finally:
        event.remove(Session, "after_commit", lose_first_ack)
    assert lost and counts(store)[2] == 10
    assert writer.written["add_explanations"] == 10
    writer.close()


@pytest.mark.integration
def test_postgres_outage_buffers_drops_oldest_and_recovers_exactly_once(pg_proxy, pg_schema_url,
                                                                      make_report):
    proxy, url = pg_proxy
    store = open_store(url)
    direct = open_store(pg_schema_url, create=False)
    registry = CollectorRegistry()
    saved = []
    writer = StoreWriter(store, metrics=PipelineMetrics(registry), max_pending=15,
                         backoff_initial=0.05, backoff_max=0.3)
    try:
        writer.write_reports([make_report(window_start=T0 - 300)])
        assert writer.flush(15) and writer.healthy

        proxy.stop()  # connections refused, pooled ones cut
        writer.write_reports([make_report(window_start=T0)])  # R0: in flight, retried
        assert wait_until(lambda: not writer.healthy)
        assert "unavailable" in writer.last_error
        reports = [make_report(window_start=T0 + 300 * i) for i in range(1, 21)]  # R1..R20
        writer.write_reports(reports)  # 15 fit: R1..R5 dropped
        writer.save_checkpoint("driftd", {"p:0": 1}, b"one",
                               on_saved=lambda n, o: saved.append(o))
        writer.add_explanations([explanation(f"p{i}") for i in range(3)])  # drops R6..R8
        writer.save_checkpoint("driftd", {"p:0": 2}, b"two",
                               on_saved=lambda n, o: saved.append(o))  # replaces "one"
        assert not writer.flush(0.5)
        assert writer.pending == 1 + 12 + 3 + 1
        assert writer.dropped == {"write_reports": 8, "add_explanations": 0, "add_alarms": 0, "save_checkpoint": 0}
        assert sample(registry, "driftd_store_pending_writes") == 17
        assert sample(registry, "driftd_store_errors_total", operation="write_reports") >= 1
        assert counts(direct) == (1, 7, 0)

        proxy.start()
        assert writer.flush(30)
        assert writer.healthy and writer.last_error is None
        starts = [w.window_start.timestamp() for w in direct.windows("churn")]
        assert starts == [T0 - 300, T0] + [T0 + 300 * i for i in range(9, 21)]
        assert counts(direct) == (14, 14 * 7, 3)
        assert direct.load_checkpoint("driftd") == ({"p:0": 2}, b"two")
        assert saved == [{"p:0": 2}]
        assert sample(registry, "driftd_capacity_dropped_total", cap="store_pending") == 8
        assert sample(registry, "driftd_store_pending_writes") == 0
    finally:
        writer.close(5)
        store.close()
        direct.close()


@pytest.mark.integration
def test_store_down_at_start_then_schema_and_writes_arrive(pg_proxy, pg_schema_url, make_report):
    proxy, url = pg_proxy
    proxy.stop()
    store = open_store(url, create=False)  # nothing touches the database yet
    writer = StoreWriter(store, ensure_schema=True, backoff_initial=0.05, backoff_max=0.2)
    try:
        writer.write_reports([make_report()])
        writer.save_checkpoint("driftd", {"p:0": 1}, b"x")
        assert wait_until(lambda: not writer.healthy)
        assert not writer.flush(0.3)
        proxy.start()
        assert writer.flush(30) and writer.healthy
        direct = open_store(pg_schema_url, create=False)
        assert direct.current_revision() == direct.head_revision()
        assert len(direct.windows("churn")) == 1
        direct.close()
        # Down again: close() gives up within its timeout and reports what is left.
        proxy.stop()
        writer.write_reports([make_report(window_start=T0 + 300)])
        assert wait_until(lambda: not writer.healthy)
        started = time.monotonic()
        assert writer.close(timeout=0.5) is False
        assert time.monotonic() - started < 5
    finally:
        writer.close(1)
        store.close()


@pytest.mark.integration
def test_a_paused_server_makes_the_writer_unhealthy_until_it_answers(pg_proxy, pg_schema_url,
                                                                      make_report):
    proxy, url = pg_proxy
    store = open_store(url)
    writer = StoreWriter(store, stall_timeout=0.5)
    try:
        proxy.pause()  # the server accepts bytes and never answers; no error anywhere
        writer.write_reports([make_report()])
        assert wait_until(lambda: not writer.healthy)
        assert "not answered" in writer.last_error
        assert not writer.flush(0.2)
        proxy.resume()
        assert writer.flush(30) and writer.healthy
        direct = open_store(pg_schema_url, create=False)
        assert len(direct.windows("churn")) == 1
        direct.close()
    finally:
        proxy.resume()
        writer.close(5)
        store.close()
