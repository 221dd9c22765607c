"""The Alertmanager webhook receiver on SQLite and PostgreSQL: incidents recorded
idempotently by fingerprint and start, closed by resolved notifications, bad bodies
answered 400 with a reason, store failures 503; and fed by a real Alertmanager."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import sessionmaker

from alerts.errors import WebhookError
from alerts.receiver import MAX_BODY_BYTES, handle_webhook, record_notification
from monitor.metrics import PipelineMetrics
from monitor.store import Store, open_store
from monitor.store.schema import IncidentRow

STARTS = "2026-11-23T09:15:02.123456789Z"
STARTS_DT = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'driftd.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    opened = open_store(url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def alert(
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    starts: str = STARTS,
    ends: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict:
    return {
        "status": status,
        "labels": {
            "alertname": "DriftdFeatureDrift",
            "severity": "warning",
            "model": "fraud",
            "version": "v1",
            "feature": "amount",
            "job": "driftd",
            **labels,
        },
        "annotations": {"summary": "drift", "investigation_url": "http://app/?model=fraud"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict) -> dict:
    status = "resolved" if alerts and all(a["status"] == "resolved" for a in alerts) else "firing"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DriftdFeatureDrift"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "driftd-incidents",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


def incidents(store: Store) -> list[IncidentRow]:
    with store.session() as session:
        return list(session.scalars(select(IncidentRow).order_by(IncidentRow.id)))


def test_firing_then_resolved_is_one_incident(store):
    [first] = record_notification(store.session, payload(alert()))
    [again] = record_notification(store.session, payload(alert()))
    assert first == again
    [row] = incidents(store)
    assert (row.status, row.alertname, row.severity, row.model, row.version, row.feature) == (
        "firing",
        "DriftdFeatureDrift",
        "warning",
        "fraud",
        "v1",
        "amount",
    )
    assert row.starts_at == STARTS_DT and row.ends_at is None
    assert row.labels["job"] == "driftd"
    assert row.annotations["investigation_url"] == "http://app/?model=fraud"

    ends = "2026-11-23T09:30:00Z"
    [closed] = record_notification(store.session, payload(alert("resolved", ends=ends)))
    assert closed == first
    [row] = incidents(store)
    assert row.status == "resolved"
    assert row.ends_at == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def test_new_start_is_a_new_incident_and_acknowledgement_survives_repeats(store):
    [first] = record_notification(store.session, payload(alert()))
    with store.transaction() as session:
        session.get(IncidentRow, first).status = "acknowledged"
    record_notification(store.session, payload(alert()))  # a repeat notification
    assert incidents(store)[0].status == "acknowledged"
    [second] = record_notification(
        store.session, payload(alert(starts="2026-11-23T11:00:00+01:00"))
    )
    assert second != first
    assert [r.status for r in incidents(store)] == ["acknowledged", "firing"]
    assert incidents(store)[1].starts_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_resolved_without_firing_and_reopen(store):
    ends = "2026-11-23T10:00:00Z"
    [row_id] = record_notification(store.session, payload(alert("resolved", ends=ends)))
    assert incidents(store)[0].status == "resolved"
    # Alertmanager resolved it (resolve_timeout) but Prometheus still fires it: reopen.
    assert record_notification(store.session, payload(alert())) == [row_id]
    [row] = incidents(store)
    assert (row.status, row.ends_at) == ("firing", None)


def test_several_alerts_in_one_payload(store):
    ids = record_notification(
        store.session,
        payload(
            alert(fingerprint="01"),
            alert(fingerprint="02", feature="age"),
            alert(fingerprint="01"),
        ),
    )
    assert ids[0] == ids[2] != ids[1]
    assert len(incidents(store)) == 2


def test_concurrent_deliveries_record_one_incident(store):
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(record_notification(store.session, payload(alert(fingerprint="beef"))))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len({tuple(r) for r in results}) == 1 and len(results) == 6
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(IncidentRow)) == 1


BAD_BODIES = [
    (b"not json", "not JSON"),
    (b"[]", "expected a JSON object"),
    (json.dumps({**payload(alert()), "version": "3"}).encode(), 'expected "4"'),
    (json.dumps({**payload(alert()), "version": 4}).encode(), 'expected "4"'),
    (json.dumps({**payload(alert()), "status": "maybe"}).encode(), "status"),
    (json.dumps({**payload(alert()), "alerts": {}}).encode(), "alerts: expected a list"),
    (json.dumps(payload({**alert(), "status": "open"})).encode(), "alerts[0].status"),
    (json.dumps(payload({**alert(), "fingerprint": "xyz"})).encode(), "alerts[0].fingerprint"),
    (json.dumps(payload({**alert(), "fingerprint": 12})).encode(), "alerts[0].fingerprint"),
    (json.dumps(payload({**alert(), "labels": {"severity": "warning"}})).encode(), "alertname"),
    (
        json.dumps(payload({**alert(), "labels": {"alertname": "X", "model": 3}})).encode(),
        "labels.model",
    ),
    (
        json.dumps(payload({**alert(), "labels": {"alertname": "X", "model": "m" * 200}})).encode(),
        "longer than 128",
    ),
    (json.dumps(payload({**alert(), "startsAt": "yesterday"})).encode(), "startsAt"),
    (json.dumps(payload({**alert(), "startsAt": "0001-01-01T00:00:00Z"})).encode(), "zero time"),
    (json.dumps(payload({**alert(), "endsAt": 5})).encode(), "endsAt"),
    (json.dumps({**payload(), "alerts": ["alert"]}).encode(), "alerts[0]: expected an object"),
    (json.dumps(payload(*[alert()] * 1001)).encode(), "at most 1000"),
    (b" " * (MAX_BODY_BYTES + 1), "bytes, at most"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES, ids=[r for _, r in BAD_BODIES])
def test_bad_bodies_are_refused_with_a_reason(body, reason, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    store.migrate()
    status, reply = handle_webhook(body, store.session)
    assert status == 400
    assert reason in json.loads(reply)["error"]
    assert incidents(store) == []
    store.close()


def test_record_notification_raises_on_bad_payload(tmp_path):
    with pytest.raises(WebhookError, match="version"):
        record_notification(lambda: None, {"version": "2"})  # type: ignore[arg-type, return-value]


def test_handler_counts_notifications_and_store_errors(tmp_path, postgres_url):
    metrics = PipelineMetrics(CollectorRegistry())
    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    store.migrate()
    body = json.dumps(
        payload(alert(), alert("resolved", fingerprint="ff", ends="2026-11-23T10:00:00Z"))
    ).encode()
    status, reply = handle_webhook(body, store.session, metrics=metrics)
    assert status == 200 and len(json.loads(reply)["incidents"]) == 2
    registry = metrics.registry
    assert registry.get_sample_value("driftd_alert_notifications_total", {"status": "firing"}) == 1
    assert (
        registry.get_sample_value("driftd_alert_notifications_total", {"status": "resolved"}) == 1
    )
    store.close()
    # A database that cannot be reached: 503 so that Alertmanager retries.
    unreachable = sessionmaker(
        create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=1")
    )
    status, reply = handle_webhook(body, unreachable, metrics=metrics)
    # No database host, port or user for the (possibly unauthenticated) caller.
    assert (status, json.loads(reply)) == (503, {"error": "store unavailable; retry later"})
    assert "127.0.0.1" not in reply.decode() and "postgres" not in reply.decode()
    assert (
        registry.get_sample_value("driftd_store_errors_total", {"operation": "record_incident"})
        == 1
    )


@pytest.mark.integration
def test_real_alertmanager_delivers_firing_and_resolved(tmp_path, alertmanager_bin):
    """Alertmanager -> webhook -> handle_webhook -> incident, firing then resolved."""
    import urllib.request

    from alerts.alertmanager import alertmanager_config
    from tests.realstack import alertmanager, wait_until, webhook_receiver

    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    store.migrate()
    handler = lambda body: handle_webhook(body, store.session)
    with (
        webhook_receiver(handler, path="/api/v1/alerts") as incidents_hook,
        webhook_receiver() as pager,
        webhook_receiver() as ticket,
    ):
        config = alertmanager_config(
            pager.url,
            ticket.url,
            incidents_hook.url,
            group_wait="1s",
            group_interval="1s",
            resolve_timeout="1m",
        )
        with alertmanager(config) as am:
            labels = {
                "alertname": "DriftdModelDrift",
                "severity": "critical",
                "model": "fraud",
                "version": "v1",
                "job": "driftd",
                "instance": "a",
            }

            def post(ends_at: str | None = None) -> None:
                item = {
                    "labels": labels,
                    "annotations": {"summary": "drift"},
                    "startsAt": "2026-11-23T09:00:00Z",
                }
                if ends_at:
                    item["endsAt"] = ends_at
                request = urllib.request.Request(
                    f"{am.url}/api/v2/alerts",
                    data=json.dumps([item]).encode(),
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                urllib.request.urlopen(request, timeout=5).close()

            post()
            pager.wait_for_alert("DriftdModelDrift", timeout=20)
            [row] = wait_until(lambda: incidents(store), 20, what="incident recorded")
            assert (row.status, row.alertname, row.model) == ("firing", "DriftdModelDrift", "fraud")
            post(ends_at=datetime.now(UTC).isoformat())
            incidents_hook.wait_for_alert("DriftdModelDrift", status="resolved", timeout=20)
            [row] = wait_until(
                lambda: [r for r in incidents(store) if r.status == "resolved"],
                20,
                what="incident resolved",
            )
            assert row.ends_at is not None and len(incidents(store)) == 1
    store.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_alert_like = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]) | _json,
        "labels": st.dictionaries(
            st.sampled_from(["alertname", "model", "severity"]), st.text(max_size=8) | _json
        ),
        "startsAt": st.sampled_from([STARTS, "2026-11-23T09:00:00+02:00"]) | _json,
        "fingerprint": st.from_regex(r"[0-9a-f]{1,16}", fullmatch=True) | _json,
    },
    optional={"annotations": _json, "endsAt": _json},
)


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'driftd.db'}")
    opened.migrate()
    yield opened
    opened.close()


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        _json.map(lambda v: json.dumps(v).encode()),
        st.lists(_alert_like, max_size=3).map(
            lambda alerts: json.dumps(payload(*alerts) if alerts else payload()).encode()
        ),
        st.binary(max_size=64),
    )
)
def test_any_body_gets_200_or_400_never_an_exception(body, fuzz_store):
    status, reply = handle_webhook(body, fuzz_store.session)
    assert status in (200, 400), reply
    decoded = json.loads(reply)
    assert ("incidents" in decoded) if status == 200 else decoded["error"]
