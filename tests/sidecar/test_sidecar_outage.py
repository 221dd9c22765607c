"""Kafka gone at start or mid-way: callers never see an exception or wait, the buffer
stays within its bound, drops are counted exactly, and everything accepted arrives
once the broker is back. Each test runs its own broker so that it can stop it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from monitor.broker import BrokerError, EmbeddedBroker, free_port
from monitor.sidecar import PredictionLogger
from tests.conftest import require
from tests.sidecar.sidecar_support import prediction_event, read_topic, running_sidecar

pytestmark = pytest.mark.integration

# Small timeouts so that a dead broker is noticed in seconds, not the defaults' minutes.
FAST = {"request_timeout_ms": 3000, "reconnect_backoff_max_ms": 500, "connect_timeout_ms": 500}


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    instance = EmbeddedBroker(port=free_port())
    try:
        instance.start()
    except BrokerError as exc:
        require(False, f"embedded broker: {exc}")
    yield instance
    instance.stop()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def _log_all(logger: PredictionLogger, events: list[dict]) -> tuple[list[dict], float]:
    """Log every event; the accepted ones and the slowest call in seconds."""
    accepted = []
    slowest = 0.0
    for event in events:
        started = time.perf_counter()
        ok = logger.log_prediction(**event)
        slowest = max(slowest, time.perf_counter() - started)
        if ok:
            accepted.append(event)
    return accepted, slowest


def _ids(records: list) -> list[str]:
    return sorted(value["prediction_id"] for _, value in records)


def test_broker_stopped_and_restarted_during_logging(broker: EmbeddedBroker) -> None:
    capacity = 400
    logger = PredictionLogger(bootstrap_servers=broker.bootstrap_servers, predictions_topic="outage.predictions",
                              buffer_events=capacity, **FAST)
    try:
        before, _ = _log_all(logger, [prediction_event(i) for i in range(300)])
        assert len(before) == 300 and logger.flush(timeout=30)
        assert _ids(read_topic(broker.bootstrap_servers, "outage.predictions", expected=300)) == _ids(
            [(None, e) for e in before])

        broker.stop()
        during, slowest = _log_all(logger, [prediction_event(i) for i in range(300, 1000)])
        # Nothing can be acknowledged while the broker is down, so exactly `capacity` fit.
        assert len(during) == capacity
        assert during == [prediction_event(i) for i in range(300, 300 + capacity)]  # the newest are dropped
        assert slowest < 0.1
        _wait(lambda: not logger.ready, 20, "logger reports not ready")
        stats = logger.stats()
        assert (stats.accepted, stats.dropped, stats.sent, stats.buffered) == (700, 300, 300, capacity)

        broker.start()  # same port, empty memory: topics are created again
        assert logger.flush(timeout=60), logger.stats()
        assert logger.ready
        after, _ = _log_all(logger, [prediction_event(i) for i in range(1000, 1100)])
        assert len(after) == 100 and logger.flush(timeout=30)
        stats = logger.stats()
        assert (stats.accepted, stats.dropped, stats.sent, stats.buffered) == (800, 300, 800, 0)
    finally:
        logger.close(timeout=5)

    got = read_topic(broker.bootstrap_servers, "outage.predictions", expected=capacity + 100)
    assert _ids(got) == _ids([(None, e) for e in during + after])  # every accepted event, once
    by_id = {value["prediction_id"]: value for _, value in got}
    assert all(by_id[e["prediction_id"]] == e for e in during + after)  # unchanged


def test_kafka_down_at_start_then_up() -> None:
    port = free_port()
    logger = PredictionLogger(bootstrap_servers=f"127.0.0.1:{port}", predictions_topic="late.predictions",
                              buffer_events=50, **FAST)
    broker = EmbeddedBroker(port=port)
    try:
        accepted, slowest = _log_all(logger, [prediction_event(i) for i in range(80)])
        assert len(accepted) == 50 and slowest < 0.1
        assert not logger.ready
        stats = logger.stats()
        assert (stats.dropped, stats.buffered, stats.sent) == (30, 50, 0)
        try:
            broker.start()
        except BrokerError as exc:
            require(False, f"embedded broker: {exc}")
        assert logger.flush(timeout=60), logger.stats()
        assert logger.ready
        got = read_topic(broker.bootstrap_servers, "late.predictions", expected=50)
        assert _ids(got) == _ids([(None, e) for e in accepted])
    finally:
        logger.close(timeout=5)
        broker.stop()


def test_http_sidecar_buffers_then_503_while_kafka_is_gone(broker: EmbeddedBroker) -> None:
    logger = PredictionLogger(bootstrap_servers=broker.bootstrap_servers, predictions_topic="gone.predictions",
                              buffer_events=30, **FAST)
    events = [prediction_event(i, model="gone") for i in range(40)]
    try:
        with running_sidecar(logger) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert client.post("/v1/predictions", json=events[0]).status_code == 202
            assert logger.flush(timeout=30)
            broker.stop()
            # Kafka gone but room in the buffer: still accepted.
            assert client.post("/v1/predictions", json=events[1:30]).json() == {"accepted": 29}
            _wait(lambda: client.get("/readyz").status_code == 503, 20, "/readyz turns 503")
            assert "Kafka not reachable" in client.get("/readyz").json()["reason"]
            refused = client.post("/v1/predictions", json=events[30:40])
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
            assert refused.json()["error"] == "kafka_unavailable" and refused.json()["accepted"] == 0
            assert client.get("/healthz").status_code == 200  # alive: do not restart the pod

            broker.start()
            assert logger.flush(timeout=60), logger.stats()
            assert client.post("/v1/predictions", json=events[30:40]).status_code == 202  # the retry
            assert logger.flush(timeout=30)
            _wait(lambda: client.get("/readyz").status_code == 200, 10, "/readyz back to 200")
    finally:
        logger.close(timeout=5)
    stats = logger.stats()
    assert stats.rejected == {"kafka_unavailable": 10}
    assert (stats.accepted, stats.sent, stats.dropped) == (40, 40, 0)
    # The first event went to the broker before it was stopped (and lost with its memory).
    got = read_topic(broker.bootstrap_servers, "gone.predictions", expected=39)
    assert _ids(got) == sorted(e["prediction_id"] for e in events[1:])


def test_http_sidecar_429_while_kafka_is_slow(broker: EmbeddedBroker) -> None:
    logger = PredictionLogger(bootstrap_servers=broker.bootstrap_servers, predictions_topic="slow.predictions",
                              buffer_events=20, stall_timeout_s=60, **{**FAST, "request_timeout_ms": 60_000})
    events = [prediction_event(i, model="slow") for i in range(25)]
    pid = broker._process.pid  # pausing the process is the realistic "slow broker"
    try:
        with running_sidecar(logger) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert client.post("/v1/predictions", json=events[0]).status_code == 202
            assert logger.flush(timeout=30)
            os.kill(pid, signal.SIGSTOP)
            try:
                assert client.post("/v1/predictions", json=events[1:21]).status_code == 202
                refused = client.post("/v1/predictions", json=events[21:25])
                assert refused.status_code == 429
                assert refused.headers["retry-after"] == "1"
                assert refused.json()["error"] == "buffer_full"
                assert client.get("/readyz").json()["reason"] == "buffer full"
            finally:
                os.kill(pid, signal.SIGCONT)
            assert logger.flush(timeout=60), logger.stats()
            assert client.post("/v1/predictions", json=events[21:25]).status_code == 202
            assert logger.flush(timeout=30)
    finally:
        logger.close(timeout=5)
    got = read_topic(broker.bootstrap_servers, "slow.predictions", expected=25)
    assert _ids(got) == sorted(e["prediction_id"] for e in events)
    assert logger.stats().rejected == {"buffer_full": 4}


def test_idle_logger_reports_broker_loss_and_return(broker: EmbeddedBroker) -> None:
    logger = PredictionLogger(bootstrap_servers=broker.bootstrap_servers, predictions_topic="idle.predictions",
                              **FAST)
    try:
        _wait(lambda: logger.ready, 20, "connected")
        broker.stop()  # nothing is being logged: only the idle probe can notice
        _wait(lambda: not logger.ready and logger.stats().last_error is not None, 20,
              "not ready while the broker is gone")
        assert "cannot reach Kafka" in logger.stats().last_error
        broker.start()
        _wait(lambda: logger.ready, 30, "ready again once the broker is back")
    finally:
        logger.close(timeout=5)
