"""PredictionLogger without a broker: validation at the call site, the bounded buffer,
configuration errors. Nothing here waits for Kafka; no broker listens on the port used."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
from kafka import codec

from monitor.broker import free_port
from monitor.config import ConfigError, KafkaSettings
from monitor.sidecar import InvalidEvent, LoggerClosed, PredictionLogger

VALID = {
    "model": "churn",
    "model_version": "3",
    "prediction_id": "r-1",
    "features": {"tenure": 12, "plan": "pro", "autopay": True, "referrer": None},
    "prediction": 1,
}


@pytest.fixture
def offline() -> PredictionLogger:
    """A logger pointed at a closed port: everything stays in the buffer."""
    logger = PredictionLogger(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_ms=200,
                              buffer_events=5)
    yield logger
    logger.close(timeout=0)


@pytest.mark.parametrize(("change", "reason", "field"), [
    ({"model": ""}, "schema", "'model'"),
    ({"model": "has space"}, "schema", "'model'"),
    ({"model_version": "v" * 65}, "schema", "'model_version'"),
    ({"features": ["tenure"]}, "schema", "'features'"),
    ({"features": {"tenure": [1, 2]}}, "schema", "'tenure'"),
    ({"features": {"charges": float("nan")}}, "schema", "'charges'"),
    ({"prediction": None}, "schema", "'prediction'"),
    ({"scores": {"1": 1.5}}, "schema", "'1'"),
    ({"segment": {"region": 3}}, "schema", "'region'"),
    ({"variant": "blue"}, "schema", "'variant'"),
    ({"latency_ms": -1}, "schema", "'latency_ms'"),
    ({"timestamp": "yesterday"}, "bad_timestamp", "yesterday"),
    ({"timestamp": -5}, "bad_timestamp", "1970"),
    ({"timestamp": time.time() + 365 * 86_400}, "bad_timestamp", "ahead of the wall clock"),
    ({"timestamp": "2999-01-01T00:00:00Z"}, "bad_timestamp", "limits.max_future_seconds"),
])
def test_invalid_prediction_raises_with_reason(offline: PredictionLogger, change: dict, reason: str,
                                               field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        offline.log_prediction(**{**VALID, **change})
    assert caught.value.kind == "prediction"
    assert caught.value.reason == reason
    assert field in caught.value.detail
    assert isinstance(caught.value, ValueError)  # callers may catch ValueError
    stats = offline.stats()
    assert stats.rejected == {reason: 1}
    assert stats.accepted == 0


def test_invalid_label_raises(offline: PredictionLogger) -> None:
    with pytest.raises(InvalidEvent, match="'label' is required"):
        offline.log_label(prediction_id="r-1", label=None)
    with pytest.raises(InvalidEvent, match="'prediction_id'"):
        offline.log_label(prediction_id="", label=1)
    assert offline.log_label(prediction_id="r-1", label="churned", model="churn")
    with pytest.raises(InvalidEvent, match="ahead of the wall clock"):  # a label from a wrong clock
        offline.log_label(prediction_id="r-1", label=1, timestamp=time.time() + 7200)


def test_unserialisable_feature_name_is_an_invalid_event(offline: PredictionLogger) -> None:
    with pytest.raises(InvalidEvent, match="not JSON-serialisable"):
        offline.log_prediction(**{**VALID, "features": {1: 2.0}})


def test_too_large_event_is_refused_before_the_buffer() -> None:
    logger = PredictionLogger(bootstrap_servers=f"127.0.0.1:{free_port()}", max_event_bytes=400,
                              connect_timeout_ms=200)
    try:
        with pytest.raises(InvalidEvent) as caught:
            logger.log_prediction(**{**VALID, "features": {"text": "x" * 500}})
        assert caught.value.reason == "too_large"
        assert logger.stats().buffered == 0
    finally:
        logger.close(timeout=0)


def test_numpy_scalars_are_encoded_as_plain_numbers(offline: PredictionLogger) -> None:
    event = {**VALID, "features": {"tenure": np.int64(12), "charges": np.float32(0.5), "vip": np.bool_(True)},
             "prediction": np.int64(1), "scores": {"1": np.float64(0.75)}, "timestamp": 1_767_225_600}
    _, key, value = offline.encode_prediction(event)
    assert key == b"r-1"
    assert orjson.loads(value) == {**VALID, "features": {"tenure": 12, "charges": 0.5, "vip": True},
                                   "prediction": 1, "scores": {"1": 0.75}, "timestamp": 1_767_225_600}


def test_timestamp_defaults_to_now_and_accepts_datetimes(offline: PredictionLogger) -> None:
    before = time.time()
    record = offline.encode_prediction({**VALID, "timestamp": time.time()})
    assert before <= orjson.loads(record[2])["timestamp"] <= time.time()
    assert offline.log_prediction(**VALID)  # timestamp=None -> now
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert offline.log_prediction(**{**VALID, "timestamp": moment})
    assert offline.log_label(prediction_id="r-1", label=1, timestamp=moment)


def test_full_buffer_drops_the_newest_and_never_blocks(offline: PredictionLogger) -> None:
    durations = []
    results = []
    for index in range(8):
        started = time.perf_counter()
        results.append(offline.log_prediction(**{**VALID, "prediction_id": f"r-{index}"}))
        durations.append(time.perf_counter() - started)
    assert results == [True] * 5 + [False] * 3
    stats = offline.stats()
    assert (stats.accepted, stats.dropped, stats.buffered, stats.sent) == (5, 3, 5, 0)
    # The delivery thread is busy failing to connect meanwhile; callers never wait for it.
    assert max(durations) < 0.1
    assert not offline.ready
    assert not offline.flush(timeout=0.2)


def test_not_ready_reports_why(offline: PredictionLogger) -> None:
    offline.log_prediction(**VALID)
    deadline = time.monotonic() + 10
    while offline.stats().last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = offline.stats()
    assert not stats.ready
    assert "cannot reach Kafka at 127.0.0.1:" in stats.last_error


def test_close_reports_undelivered_and_logging_after_close_raises() -> None:
    with PredictionLogger(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_ms=200,
                          close_timeout=0.2) as logger:
        assert logger.log_prediction(**VALID)
    assert logger.stats().buffered == 1  # lost, and said so
    assert logger.close() is False
    with pytest.raises(LoggerClosed):
        logger.log_prediction(**VALID)


def test_configuration_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"compression: unknown codec 'brotli'.*'gzip'"):
        PredictionLogger(compression="brotli")
    with pytest.raises(ConfigError, match="bootstrap_server: unknown key"):
        PredictionLogger(bootstrap_server="127.0.0.1:9092")
    with pytest.raises(ConfigError, match="security_protocol"):
        PredictionLogger(security_protocol="TLS")


@pytest.mark.parametrize("codec_name", ["lz4", "zstd", "snappy"])
def test_missing_compression_library_is_a_clear_error(codec_name: str) -> None:
    if getattr(codec, f"has_{codec_name}")():
        logger = PredictionLogger(compression=codec_name, bootstrap_servers=f"127.0.0.1:{free_port()}")
        assert logger.producer_options()["compression_type"] == codec_name
        logger.close(timeout=0)
        return
    with pytest.raises(ConfigError, match=f"needs its library \\(pip install {codec_name}\\)"):
        PredictionLogger(compression=codec_name)


def test_producer_options_carry_security_and_bounded_blocking(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    logger = PredictionLogger(KafkaSettings(security_protocol="SSL", ssl_cafile=ca,
                                            bootstrap_servers=f"127.0.0.1:{free_port()}"),
                              connect_timeout_ms=100)
    try:
        options = logger.producer_options()
        assert options["security_protocol"] == "SSL"
        assert options["ssl_cafile"] == str(ca)
        assert options["max_block_ms"] <= 1000
        assert options["delivery_timeout_ms"] >= options["linger_ms"] + options["request_timeout_ms"]
        assert options["enable_idempotence"] is False
    finally:
        logger.close(timeout=0)


def test_buffer_is_bounded_in_bytes_too() -> None:
    logger = PredictionLogger(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_ms=200,
                              buffer_events=1000, buffer_bytes=4000)
    try:
        size = len(logger.encode_prediction({**VALID, "timestamp": 1_767_225_600})[2])
        results = [logger.log_prediction(**{**VALID, "timestamp": 1_767_225_600}) for _ in range(50)]
        stats = logger.stats()
        fits = 4000 // size
        assert results == [True] * fits + [False] * (50 - fits)
        assert (stats.accepted, stats.dropped, stats.buffered, stats.buffered_bytes) == (fits, 50 - fits, fits, fits * size)
        assert stats.buffered_bytes <= stats.capacity_bytes
    finally:
        logger.close(timeout=0)
