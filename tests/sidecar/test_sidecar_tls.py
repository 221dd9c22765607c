"""The logger connects to Kafka over TLS and verifies the broker's certificate.

The broker sits behind a socat TLS terminator (see ``tests/tlsproxy.py``) and
advertises the terminator's port, so bootstrap and produce requests both use TLS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.broker import BrokerError
from monitor.sidecar import PredictionLogger
from tests.conftest import require, require_binary
from tests.sidecar.sidecar_support import prediction_event, read_topic
from tests.tlsproxy import TlsBroker, tls_broker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    require_binary("socat")
    try:
        with tls_broker(tmp_path_factory.mktemp("tls")) as running:
            yield running
    except BrokerError as exc:
        require(False, f"embedded broker: {exc}")


def _tls_logger(tls: TlsBroker, cafile: Path, topic: str) -> PredictionLogger:
    return PredictionLogger(bootstrap_servers=tls.bootstrap_servers, security_protocol="SSL",
                            ssl_cafile=cafile, predictions_topic=topic, connect_timeout_ms=2000)


def test_logger_delivers_over_tls_with_ca_verification(tls: TlsBroker) -> None:
    events = [prediction_event(i, model="tls") for i in range(50)]
    with _tls_logger(tls, tls.ca_file, "tls.predictions") as logger:
        for event in events:
            assert logger.log_prediction(**event)
        assert logger.flush(timeout=30), logger.stats()
        assert logger.ready
    got = read_topic(tls.bootstrap_servers, "tls.predictions", expected=50,
                     security_protocol="SSL", ssl_cafile=str(tls.ca_file))
    assert sorted((v for _, v in got), key=lambda v: v["prediction_id"]) == sorted(
        events, key=lambda v: v["prediction_id"])


def test_wrong_ca_fails_clearly_and_delivers_nothing(tls: TlsBroker) -> None:
    logger = _tls_logger(tls, tls.wrong_ca_file, "tls.rejected")
    try:
        assert logger.log_prediction(**prediction_event(0, model="tls"))
        deadline = time.monotonic() + 20
        while logger.stats().last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = logger.stats()
        assert not stats.ready
        assert stats.sent == 0 and stats.buffered == 1
        assert f"TLS certificate verification failed for {tls.bootstrap_servers}" in stats.last_error
        assert "unable to get local issuer certificate" in stats.last_error
    finally:
        assert logger.close(timeout=0.5) is False
    assert read_topic(tls.bootstrap_servers, "tls.rejected", expected=1, timeout=3,
                      security_protocol="SSL", ssl_cafile=str(tls.ca_file)) == []
