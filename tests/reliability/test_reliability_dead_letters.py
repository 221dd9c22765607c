"""Dead letters land: a 1.5 MB message (over limits.max_message_bytes and over the
producer's max_request_size) reaches the dead-letter topic as headers plus a
truncated value naming its source; failed dead-letter sends are counted."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry

from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.deadletter import PREVIEW_BYTES, DeadLetters
from monitor.metrics import PipelineMetrics

BIG = 1_500_000


def _dead_letters(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=2_000,
        fetch_max_bytes=8_000_000,
        max_partition_fetch_bytes=8_000_000,
    )
    found: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                found.extend(batch)
    finally:
        consumer.close()
    return found


@pytest.mark.integration
def test_a_too_large_message_is_found_on_the_dead_letter_topic(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = load_settings(
        None,
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "group_id": f"{topic_prefix}-g",
            "predictions_topic": f"{topic_prefix}.predictions",
            "labels_topic": f"{topic_prefix}.labels",
            "dead_letter_topic": f"{topic_prefix}.dlq",
            "max_poll_interval_ms": 3000,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
        },
        http={"port": 0},
        labels={"enabled": False},
    )
    assert settings.limits.max_message_bytes < BIG
    big = b'{"model": "churn", "pad": "' + b"x" * (BIG - 40) + b'"}'
    small = b"not json at all"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=4 * BIG)
    producer.send(settings.kafka.predictions_topic, big, key=b"k-big", partition=0).get(timeout=30)
    producer.send(settings.kafka.predictions_topic, small, partition=0).get(timeout=30)
    producer.close()

    daemon = Daemon(settings, with_store=False).start()
    try:
        found = _dead_letters(kafka_bootstrap, settings.kafka.dead_letter_topic, 2)
        metrics = daemon.registry
        assert metrics.get_sample_value("driftd_invalid_events_total", {"reason": "too_large"}) == 1
        assert metrics.get_sample_value("driftd_dead_letter_truncated_total") == 1
        assert metrics.get_sample_value("driftd_dead_letter_errors_total") == 0
    finally:
        daemon.stop()
    by_reason = {dict(m.headers)["driftd-reason"].decode(): m for m in found}
    assert set(by_reason) == {"too_large", "not_json"}
    letter = by_reason["too_large"]
    headers = {name: value.decode() for name, value in letter.headers}
    assert letter.value == big[:PREVIEW_BYTES] and letter.key == b"k-big"
    assert headers["driftd-truncated"] == "true"
    assert headers["driftd-original-bytes"] == str(len(big))
    assert headers["driftd-value-sha256"] == hashlib.sha256(big).hexdigest()
    assert headers["driftd-source-topic"] == settings.kafka.predictions_topic
    assert headers["driftd-source-partition"] == "0" and headers["driftd-source-offset"] == "0"
    assert headers["driftd-source"] == f"{settings.kafka.predictions_topic}:0:0"
    small_letter = by_reason["not_json"]
    assert small_letter.value == small and "driftd-truncated" not in dict(small_letter.headers)
    assert dict(small_letter.headers)["driftd-source-offset"] == b"1"


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_callback(self, callback, *args) -> _Future:
        if self.error is None:
            callback(object(), *args)
        return self

    def add_errback(self, errback, *args) -> _Future:
        if self.error is not None:
            errback(self.error, *args)
        return self


class _Producer:
    def __init__(self, error: Exception | None = None, raise_on_send: bool = False) -> None:
        self.error, self.raise_on_send, self.sent = error, raise_on_send, []

    def send(self, topic, value=None, key=None, headers=None):
        if self.raise_on_send:
            raise self.error
        self.sent.append((topic, value, key, headers))
        return _Future(self.error)


def test_failed_sends_are_counted_from_their_futures(caplog) -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    ok = DeadLetters(_Producer(), "dlq", metrics)
    assert ok.publish(b"{}", "schema", "no model", source="p:0:1", topic="p", partition=0, offset=1)
    assert (
        ok.sent == 1 and metrics.registry.get_sample_value("driftd_dead_letter_errors_total") == 0
    )
    # Broker refuses later (async): the errback counts it.
    failing = DeadLetters(_Producer(RuntimeError("NotLeaderForPartition")), "dlq", metrics)
    assert failing.publish(b"{}", "schema", "x", source="p:0:2")
    assert failing.failed == 1
    # Producer refuses at once (e.g. MessageSizeTooLargeError).
    refusing = DeadLetters(_Producer(ValueError("too large"), raise_on_send=True), "dlq", metrics)
    assert not refusing.publish(b"{}", "schema", "x", source="p:0:3")
    assert metrics.registry.get_sample_value("driftd_dead_letter_errors_total") == 2
    assert "could not dead-letter a message from p:0:2" in caplog.text


@pytest.mark.integration
def test_the_real_producer_refusal_is_counted(kafka_bootstrap: str, topic_prefix: str) -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        # Without truncation a 1.5 MB value exceeds max_request_size: refused, counted.
        letters = DeadLetters(producer, f"{topic_prefix}.dlq", metrics, max_value_bytes=10 * BIG)
        assert not letters.publish(b"x" * BIG, "too_large", "big", source="p:0:0")
        assert metrics.registry.get_sample_value("driftd_dead_letter_errors_total") == 1
        letters = DeadLetters(producer, f"{topic_prefix}.dlq", metrics)
        assert letters.publish(b"x" * BIG, "too_large", "big", source="p:0:0")
        producer.flush(timeout=30)
        assert (
            letters.sent == 1
            and metrics.registry.get_sample_value("driftd_dead_letter_truncated_total") == 1
        )
    finally:
        producer.close()
