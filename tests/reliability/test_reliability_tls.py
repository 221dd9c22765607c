"""Kafka over TLS with CA verification, and secrets that never leak.

The embedded broker's own TLS does not work, so ``tests.tlsproxy`` puts Debian's socat
in front of it: the broker advertises the terminator's port, so after bootstrap every
connection the daemon makes goes through TLS as well.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaProducer

from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.store import open_store
from monitor.simulate import Scenario, encode, prediction_events, training_frame
from tests.conftest import require_binary
from tests.tlsproxy import tls_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_767_225_600.0
# Two features shift from the second window on, so a closed window must be flagged.
SCENARIO = Scenario(model="credit", version="v1", seed=43, drift_start=T0 + 300, shift=2.0)
PASSWORD = "s3cr3t-Pa55-do-not-leak"


def settings_for(tmp_path: Path, bootstrap: str, cafile: Path, **kafka: object):
    path = tmp_path / "baselines" / "credit" / "v1.json"
    if not path.exists():
        frame = training_frame(SCENARIO, n=10_000)
        build_baseline(frame, "credit", "v1", target="target", prediction="prediction", score="score").save(path)
    return load_settings(
        None,
        kafka={"bootstrap_servers": bootstrap, "group_id": f"g-{tmp_path.name}", "max_poll_interval_ms": 3000,
               "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "reconnect_backoff_max_ms": 1000,
               "request_timeout_ms": 5000, "security_protocol": "SSL", "ssl_cafile": str(cafile), **kafka},
        models=[{"name": "credit"}], baseline_dir=str(tmp_path / "baselines"),
        store={"url": f"sqlite:///{tmp_path / 's.db'}"}, http={"port": 0}, labels={"enabled": False},
        windows={"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 50},
        checkpoint={"interval_seconds": 1},
    )


def ready(daemon: Daemon) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/readyz", timeout=3).status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_consumer_reads_over_tls_with_ca_verification(tmp_path: Path) -> None:
    require_binary("socat")
    with tls_broker(tmp_path / "certs") as tls:
        producer = KafkaProducer(bootstrap_servers=tls.bootstrap_servers, security_protocol="SSL",
                                 ssl_cafile=str(tls.ca_file), linger_ms=10)
        events, _ = prediction_events(SCENARIO, T0, 7000, 10.0, seed=5)  # 700 s: two windows close
        for value in encode(events):
            producer.send("driftd.predictions", value, key=b"credit")
        producer.flush()
        producer.close()

        daemon = Daemon(settings_for(tmp_path, tls.bootstrap_servers, tls.ca_file)).start()
        try:
            # two segments (eu, us) x two closed windows
            wait_for(lambda: len(daemon.pipeline.recent) >= 4, 90, "two windows closed over TLS")
            assert ready(daemon) == 200
        finally:
            daemon.stop()
    first = [r for r in daemon.pipeline.recent.values() if r.window_start == T0]
    second = [r for r in daemon.pipeline.recent.values() if r.window_start == T0 + 300]
    assert sum(r.n_events for r in first) == 3000 and sum(r.n_events for r in second) == 3000

    def flagged(reports) -> set[str]:
        return {f.feature for r in reports for f in r.features if f.drifted}

    assert flagged(first) == set()  # before the shift
    assert flagged(second) == set(SCENARIO.drift_features)  # after it: exactly the shifted features


def test_wrong_ca_is_refused_clearly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_binary("socat")
    caplog.set_level(logging.WARNING)
    with tls_broker(tmp_path / "certs") as tls:
        settings = settings_for(tmp_path, tls.bootstrap_servers, tls.wrong_ca_file)
        open_store(settings.store.url).engine.dispose()  # migrated: the only error left is the CA
        daemon = Daemon(settings).start()
        try:
            # Bounded wait for the handshake failure (slow on a loaded machine), then the checks.
            wait_for(lambda: "certificate" in caplog.text.lower() or "ssl" in caplog.text.lower(), 30,
                     "the TLS handshake failure in the log")
            assert daemon.health()[0]  # alive: no crash
            assert ready(daemon) == 503  # and honest: not ready
            assert daemon.metrics.events.labels(model="credit", version="v1")._value.get() == 0
        finally:
            began = time.monotonic()
            daemon.stop()
            stopped_in = time.monotonic() - began
    text = caplog.text.lower()
    assert "certificate" in text or "ssl" in text, caplog.text[-2000:]
    # SIGTERM must not wait out kafka-python's 30 s bootstrap while the broker is unreachable.
    assert stopped_in < 10, f"stop took {stopped_in:.1f} s (KafkaConsumer bootstrap_timeout_ms)"


def test_sasl_options_pass_through_and_secrets_stay_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DRIFTD_KAFKA__SASL_PLAIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("DRIFTD_KAFKA__SSL_PASSWORD", PASSWORD + "-key")
    settings = load_settings(None, kafka={"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                          "sasl_plain_username": "driftd", "ssl_cafile": "/etc/ssl/ca.pem",
                                          "bootstrap_servers": "127.0.0.1:1", "request_timeout_ms": 5000,
                                          "reconnect_backoff_max_ms": 500},
                             http={"port": 0}, store={"url": f"sqlite:///{tmp_path / 's.db'}"}, labels={"enabled": False})
    options = settings.kafka.client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "driftd" and options["sasl_plain_password"] == PASSWORD
    assert options["ssl_cafile"] == "/etc/ssl/ca.pem" and options["ssl_password"] == PASSWORD + "-key"
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in settings.model_dump_json()

    caplog.set_level(logging.DEBUG)
    daemon = Daemon(settings).start()  # the broker is unreachable: errors get logged
    try:
        time.sleep(3)
        body = urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/metrics", timeout=3).read().decode()
    finally:
        daemon.stop()
    assert "driftd_" in body
    assert PASSWORD not in body and PASSWORD not in caplog.text
