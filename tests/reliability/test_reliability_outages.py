"""Outages: the broker down at start or mid-stream, the store unreachable for a while.

driftd keeps running, says it is not ready, reconnects, and after recovery the
windows are complete.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.conftest import require_binary
from monitor.baseline import build_baseline
from monitor.broker import EmbeddedBroker, free_port
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.simulate import Scenario, encode, prediction_events, training_frame

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_767_225_600.0
SCENARIO = Scenario(model="credit", version="v1", seed=41)


def settings_for(tmp_path: Path, bootstrap: str, store_url: str):
    frame = training_frame(SCENARIO, n=10_000)
    path = tmp_path / "baselines" / "credit" / "v1.json"
    if not path.exists():
        build_baseline(frame, "credit", "v1", target="target", prediction="prediction", score="score").save(path)
    return load_settings(
        None,
        kafka={"bootstrap_servers": bootstrap, "group_id": f"g-{tmp_path.name}", "max_poll_interval_ms": 3000,
               "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "reconnect_backoff_max_ms": 1000,
               "request_timeout_ms": 5000},
        models=[{"name": "credit"}], baseline_dir=str(tmp_path / "baselines"),
        store={"url": store_url}, http={"port": 0}, labels={"enabled": False},
        windows={"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 50, "close_on_shutdown": True},
        checkpoint={"interval_seconds": 0.5},
    )


def produce(bootstrap: str, start: float, n: int, seed: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    events, _ = prediction_events(SCENARIO, start, n, 10.0, seed=seed)
    for value in encode(events):
        producer.send("driftd.predictions", value, key=b"credit")
    producer.flush()
    producer.close()


def ready(daemon: Daemon) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/readyz", timeout=3).status
    except urllib.error.HTTPError as exc:
        return exc.code


def accepted(daemon: Daemon) -> float:
    return daemon.metrics.events.labels(model="credit", version="v1")._value.get()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_broker_down_at_start_and_mid_stream(tmp_path: Path) -> None:
    port = free_port()
    daemon = Daemon(settings_for(tmp_path, f"127.0.0.1:{port}", f"sqlite:///{tmp_path / 's.db'}")).start()
    broker = EmbeddedBroker(port=port)
    try:
        time.sleep(3)
        assert daemon.health()[0] and ready(daemon) == 503  # alive, not ready: no broker yet
        broker.start()
        produce(broker.bootstrap_servers, T0, 3000, seed=1)
        wait_for(lambda: accepted(daemon) == 3000, 60, "first 3000 events")
        assert ready(daemon) == 200

        broker.stop()  # mid-stream outage; the in-memory broker forgets its topics
        wait_for(lambda: ready(daemon) == 503, 60, "not ready while the broker is down")
        time.sleep(2)
        assert daemon.health()[0]
        broker.start()
        # The in-memory broker comes back empty (like a recreated topic): driftd notices the
        # log is shorter than its checkpoint once it has rejoined, and reads it from the start.
        wait_for(lambda: ready(daemon) == 200, 90, "ready after the broker came back")
        produce(broker.bootstrap_servers, T0 + 300, 3000, seed=2)
        wait_for(lambda: accepted(daemon) == 6000, 90, "events after the broker came back")
    finally:
        daemon.stop()
        broker.stop()
    # Windows are complete: every event is in exactly one closed window.
    assert sum(r.n_events for r in daemon.pipeline.recent.values()) == 6000


def test_store_unreachable_for_a_while(tmp_path: Path, kafka_bootstrap: str, postgres_url: str, pg_schema_url: str) -> None:
    socat = require_binary("socat")
    proxy_port = free_port()
    # PostgreSQL reached through a TCP forwarder that the test takes down and up again.
    proxied = pg_schema_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy_port}")
    assert proxied != pg_schema_url

    def start_proxy() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([socat, f"TCP-LISTEN:{proxy_port},bind=127.0.0.1,reuseaddr,fork", "TCP:127.0.0.1:5432"])  # noqa: S603
        time.sleep(0.3)
        return process

    proxy = start_proxy()
    settings = settings_for(tmp_path, kafka_bootstrap, proxied)
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"predictions_topic": f"{tmp_path.name}.p", "labels_topic": f"{tmp_path.name}.l"})})
    daemon = Daemon(settings).start()
    try:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=10)
        first, _ = prediction_events(SCENARIO, T0, 3000, 10.0, seed=3)
        for value in encode(first):
            producer.send(settings.kafka.predictions_topic, value, key=b"credit")
        producer.flush()
        wait_for(lambda: accepted(daemon) == 3000 and ready(daemon) == 200, 60, "first events with the store up")

        proxy.kill()
        proxy.wait(timeout=5)
        subprocess.run(["pkill", "-f", f"TCP-LISTEN:{proxy_port}"], check=False)  # forked children hold connections
        second, _ = prediction_events(SCENARIO, T0 + 300, 3000, 10.0, seed=4)
        for value in encode(second):
            producer.send(settings.kafka.predictions_topic, value, key=b"credit")
        producer.flush()
        wait_for(lambda: accepted(daemon) == 6000, 60, "ingest goes on while the store is down")
        wait_for(lambda: ready(daemon) == 503, 60, "not ready while the store is down")
        assert daemon.health()[0]

        proxy = start_proxy()
        wait_for(lambda: ready(daemon) == 200, 90, "ready after the store is back")
        daemon.writer.flush(timeout=30)
    finally:
        daemon.stop()
        proxy.kill()
        subprocess.run(["pkill", "-f", f"TCP-LISTEN:{proxy_port}"], check=False)
    # Every window closed during the outage reached the store once it came back.
    from monitor.store import open_store

    store = open_store(pg_schema_url)
    stored = {(w.segment, w.window_start.timestamp()): w.n_events for w in store.windows("credit")}
    store.close()
    in_memory = {(k.segment, start): r.n_events for (k, start), r in daemon.pipeline.recent.items()}
    assert stored == in_memory and sum(stored.values()) == 6000
