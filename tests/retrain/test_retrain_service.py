"""The retrain sink: cooldown through the store, republishing after a failed publish, webhook."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import orjson
import pytest

from detectors.base import DriftResult
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.results import WindowKey, WindowReport
from monitor.retrain.emitter import EmitError
from monitor.retrain.service import RetrainService
from monitor.store import open_store

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)
FLAGGED = [DriftResult("psi", "num_0", 0.41, None, 0.2, True)]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeEmitter:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[tuple[str, dict]] = []

    def send(self, model: str, payload: dict) -> None:
        if self.failures:
            self.failures -= 1
            raise EmitError("broker away")
        self.sent.append((model, payload))

    def close(self) -> None:
        pass


def window(i: int, model: str = "credit", segment: str = "") -> WindowReport:
    return WindowReport(WindowKey(model, "v1", segment), 300.0 * i, 300.0 * (i + 1), 1000,
                        features=FLAGGED, model_drifted=True, drift_share=1.0)


def service(tmp_path, emitter, clock, **retrain):
    settings = load_settings(models=[{"name": "credit"}], retrain={"enabled": True, "consecutive_windows": 2, **retrain})
    registry, metrics, _ = create_metrics(max_keys=10)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return RetrainService(settings, store, metrics, emitter=emitter, now=clock), registry, store


def drain(svc: RetrainService) -> None:
    while not svc._queue.empty():
        svc.handle(svc._queue.get_nowait())


def test_one_request_per_cooldown_from_every_segment_and_daemon(tmp_path):
    clock, emitter = Clock(), FakeEmitter()
    svc, registry, store = service(tmp_path, emitter, clock, cooldown_seconds=3600)
    for i in range(6):
        svc(window(i))
        svc(window(i, segment="region=us"))
    drain(svc)
    assert len(emitter.sent) == 1
    # A second daemon on the same store: held by the stored request.
    other, _, _ = service(tmp_path, emitter, clock, cooldown_seconds=3600)
    other(window(10))
    other(window(11))
    drain(other)
    assert len(emitter.sent) == 1
    assert registry.get_sample_value("driftd_retrain_requests_total", {"model": "credit", "reason": "drift_persisted"}) == 1
    # After the cooldown, a new run asks again.
    clock.now = T0 + timedelta(seconds=3601)
    svc(window(20))
    svc(window(21))
    drain(svc)
    assert len(emitter.sent) == 2
    assert [r.published_at is not None for r in store.retrain_requests()] == [True, True]


def test_a_failed_publish_is_republished_once_after_the_lease(tmp_path):
    clock, emitter = Clock(), FakeEmitter(failures=1)
    svc, registry, store = service(tmp_path, emitter, clock, republish_after_seconds=30)
    svc(window(0))
    svc(window(1))
    drain(svc)
    assert emitter.sent == [] and store.retrain_requests()[0].published_at is None
    assert registry.get_sample_value("driftd_retrain_failures_total", {"stage": "kafka"}) == 1
    assert svc.republish() == 0  # the claim is younger than the lease
    clock.now = T0 + timedelta(seconds=31)
    assert svc.republish() == 1
    assert svc.republish() == 0
    (model, payload), = emitter.sent
    assert model == "credit" and payload == store.retrain_requests()[0].payload
    assert store.retrain_requests()[0].published_at == clock.now


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        _Hook.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.bodies, _Hook.status = [], 200
    yield f"http://127.0.0.1:{server.server_port}/retrain"
    server.shutdown()


def test_webhook_gets_the_event_and_failures_are_counted(tmp_path, hook):
    clock, emitter = Clock(), FakeEmitter()
    svc, registry, _ = service(tmp_path, emitter, clock, webhook_url=hook, webhook_timeout_seconds=2)
    svc(window(0))
    svc(window(1))
    drain(svc)
    assert [orjson.loads(b) for b in _Hook.bodies] == [emitter.sent[0][1]]
    _Hook.status = 500
    clock.now = T0 + timedelta(days=2)
    svc(window(2))
    svc(window(3))
    drain(svc)
    assert len(emitter.sent) == 2  # the topic has it; the webhook is best effort
    assert registry.get_sample_value("driftd_retrain_failures_total", {"stage": "webhook"}) == 1


def test_the_worker_thread_emits_and_close_drains(tmp_path):
    clock, emitter = Clock(), FakeEmitter()
    svc, _, _ = service(tmp_path, emitter, clock)
    svc.start()
    svc(window(0))
    svc(window(1))
    svc.close(timeout=5)
    assert len(emitter.sent) == 1


def test_settings_errors_name_the_key():
    from monitor.config import ConfigError

    with pytest.raises(ConfigError, match=r"retrain.consecutive_windows"):
        load_settings(retrain={"consecutive_windows": 0})
    with pytest.raises(ConfigError, match=r"retrain.webhook_url"):
        load_settings(retrain={"webhook_url": "ftp://x"})
    with pytest.raises(ConfigError, match=r"retrain.drift_trigger: allowed values"):
        load_settings(retrain={"drift_trigger": "sometimes"})
    with pytest.raises(ConfigError, match=r"retrain.cooldown: unknown key"):
        load_settings(retrain={"cooldown": 5})


def test_a_run_of_drifted_windows_survives_a_restart(tmp_path):
    clock, emitter = Clock(), FakeEmitter()
    first, _, store = service(tmp_path, emitter, clock, consecutive_windows=3)
    store.write_reports([window(0), window(1)])
    for report in (window(0), window(1)):
        first(report)
    drain(first)
    assert emitter.sent == []
    # A new daemon life: the stored windows are folded in; the third drifted window decides.
    second, _, _ = service(tmp_path, emitter, clock, consecutive_windows=3)
    assert second.seed_from_store() == 2
    second(window(2))
    drain(second)
    (_model, payload), = emitter.sent
    assert [w["start"] for w in payload["windows"]] == ["1970-01-01T00:00:00Z", "1970-01-01T00:05:00Z", "1970-01-01T00:10:00Z"]
    # Seeding an empty store is harmless.
    empty, _, _ = service(tmp_path / "other", FakeEmitter(), clock)
    assert empty.seed_from_store() == 0
