"""End to end on the real broker: two models, a known shift, dead letters, metrics.

The daemon consumes from the embedded Tansu broker (or DRIFTD_TEST_KAFKA) and the
test reads what it exports on /metrics over HTTP, as Prometheus would.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.simulate import Scenario, encode, prediction_events, training_frame

pytestmark = pytest.mark.integration

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of the window size
SHIFT_AT = T0 + 600.0  # windows [T0+1200, ...) see the shift, windows before do not
MODELS = [
    Scenario(model="credit", version="v1", drift_features=("num_0", "num_3"), drift_start=SHIFT_AT, shift=1.0, seed=21),
    Scenario(model="fraud", version="v7", drift_features=("num_2",), drift_start=SHIFT_AT, shift=1.0, seed=22),
]
N_EVENTS = 24_000  # per model: 20 minutes of event time at 20 events/s
RATE = 20.0
BAD_MESSAGES = [
    (b"this is not json", "not_json"),
    (orjson.dumps({"model": "credit", "model_version": "v1"}), "schema"),
    (orjson.dumps({"model": "ghost", "model_version": "1", "prediction_id": "g", "timestamp": T0, "features": {}, "prediction": 1}), "unknown_model"),
    (orjson.dumps({"model": "credit", "model_version": "v1", "prediction_id": "t", "timestamp": "last tuesday", "features": {}, "prediction": 1}), "bad_timestamp"),
    (b"{" + b" " * 70_000 + b"}", "too_large"),
]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def daemon(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str):
    for scenario in MODELS:
        frame = training_frame(scenario, n=20_000)
        baseline = build_baseline(frame, scenario.model, scenario.version, target="target", prediction="prediction", score="score")
        baseline.save(tmp_path / "baselines" / scenario.model / f"{scenario.version}.json")
    settings = load_settings(
        None,
        kafka={
            "bootstrap_servers": kafka_bootstrap, "group_id": f"{topic_prefix}-g",
            "predictions_topic": f"{topic_prefix}.predictions", "labels_topic": f"{topic_prefix}.labels",
            "dead_letter_topic": f"{topic_prefix}.dlq", "max_poll_interval_ms": 3000,
            "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
        },
        models=[{"name": m.model} for m in MODELS],
        baseline_dir=str(tmp_path / "baselines"),
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
        http={"port": 0},
        windows={"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 200},
        limits={"max_message_bytes": 65_536},
        checkpoint={"interval_seconds": 1},
    )
    instance = Daemon(settings).start()
    try:
        yield instance
    finally:
        instance.stop()


def test_known_shift_is_flagged_exactly(daemon: Daemon, kafka_bootstrap: str) -> None:
    topics = daemon.settings.kafka
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=10)
    for scenario in MODELS:
        events, _ = prediction_events(scenario, T0, N_EVENTS, RATE, seed=scenario.seed)
        for value in encode(events):
            producer.send(topics.predictions_topic, value, key=scenario.model.encode())
    for value, _reason in BAD_MESSAGES:
        producer.send(topics.predictions_topic, value, key=b"credit")
    producer.flush()
    producer.close()

    expected_events = 2 * N_EVENTS
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        samples = scrape(daemon.http.port)
        accepted = sum(v for (name, _), v in samples.items() if name == "driftd_events_total")
        # The bad messages follow the good ones on the credit partition: wait for them too.
        invalid = sum(v for (name, _), v in samples.items() if name == "driftd_invalid_events_total")
        if accepted >= expected_events and invalid >= len(BAD_MESSAGES) and len(daemon.pipeline.recent) >= 2 * 2 * 3:
            break
        time.sleep(0.5)
    assert accepted == expected_events

    # Every closed window: drifted features are exactly the shifted ones after the shift, none before.
    closed = list(daemon.pipeline.recent.values())
    assert len(closed) >= 2 * 2 * 3  # two models, two segments, 3 windows closed by the watermark
    for report in closed:
        scenario = next(m for m in MODELS if m.model == report.key.model)
        expected = set(scenario.drift_features) if report.window_start >= SHIFT_AT else set()
        assert report.n_events >= 200
        assert set(report.drifted_features) == expected, (report.key, report.window_start - T0)

    # The exported gauges say the same for the latest window of each key.
    samples = scrape(daemon.http.port)
    for scenario in MODELS:
        for segment in ("region=eu", "region=us"):
            for feature in scenario.numeric_names + scenario.categorical_names:
                labels = {"model": scenario.model, "version": scenario.version, "segment": segment, "feature": feature}
                flagged = [v for (name, lab), v in samples.items() if name == "driftd_feature_drifted" and all((k, labels[k]) in lab for k in labels)]
                assert flagged == [1.0 if feature in scenario.drift_features else 0.0], (scenario.model, segment, feature)

    # Invalid messages: counted by reason and dead-lettered with the reason in a header.
    for _value, reason in BAD_MESSAGES:
        assert samples[("driftd_invalid_events_total", (("reason", reason),))] == 1.0, reason
    consumer = KafkaConsumer(
        topics.dead_letter_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=10_000, group_id=None,
    )
    dead = []
    for message in consumer:
        dead.append((message.value, dict(message.headers)[ "driftd-reason"].decode()))
        if len(dead) == len(BAD_MESSAGES):
            break
    consumer.close()
    assert sorted(dead) == sorted(BAD_MESSAGES)

    # Health: ready (partitions assigned, store reachable); lag exported per partition.
    ready = urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/readyz", timeout=5)
    assert ready.status == 200
    assert any(name == "driftd_consumer_lag" for name, _ in samples)
