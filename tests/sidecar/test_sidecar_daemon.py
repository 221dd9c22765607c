"""Events logged through the sidecar reach the daemon's windows unchanged.

Two daemons consume the same seeded stream: one from a topic written by a bare
KafkaProducer (``orjson.dumps`` of each event: the reference), one from a topic
written half through ``PredictionLogger`` and half through the HTTP sidecar. Every
closed window must hold the same counts, per-bin feature counts and drift scores.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaProducer

from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.sidecar import PredictionLogger
from monitor.simulate import Scenario, prediction_events, training_frame
from tests.sidecar.sidecar_support import running_sidecar

pytestmark = pytest.mark.integration

T0 = 1_767_225_600.0
SCENARIO = Scenario(model="sidecar", version="v1", drift_features=("num_0",), drift_start=T0 + 60,
                    shift=1.0, seed=31)
N_EVENTS = 3000  # 150 s of event time at 20/s: windows of 60 s, two segments
CHUNK = 250


def _daemon(tmp_path: Path, bootstrap: str, prefix: str) -> Daemon:
    settings = load_settings(
        None,
        kafka={"bootstrap_servers": bootstrap, "group_id": f"{prefix}-g",
               "predictions_topic": f"{prefix}.predictions", "labels_topic": f"{prefix}.labels",
               "dead_letter_topic": f"{prefix}.dlq", "max_poll_interval_ms": 3000,
               "session_timeout_ms": 6000, "heartbeat_interval_ms": 500},
        models=[{"name": SCENARIO.model}],
        baseline_dir=str(tmp_path / "baselines"),
        http={"port": 0},
        # Lateness longer than the stream: no event is late however the partitions are
        # polled, and every window closes at shutdown, so both daemons see the same windows.
        windows={"size_seconds": 60, "allowed_lateness_seconds": 600, "min_events": 100, "close_on_shutdown": True},
    )
    return Daemon(settings, with_store=False).start()


def _consumed(daemon: Daemon) -> float:
    value = daemon.registry.get_sample_value(
        "driftd_events_total", {"model": SCENARIO.model, "version": SCENARIO.version})
    return value or 0.0


def _windows(daemon: Daemon) -> dict:
    return {(key.model, key.version, key.segment, start): report
            for (key, start), report in daemon.pipeline.recent.items()}


def test_sidecar_events_reach_the_daemon_windows_unchanged(tmp_path: Path, kafka_bootstrap: str,
                                                           topic_prefix: str) -> None:
    frame = training_frame(SCENARIO, n=5000)
    build_baseline(frame, SCENARIO.model, SCENARIO.version, target="target", prediction="prediction",
                   score="score").save(tmp_path / "baselines" / SCENARIO.model / f"{SCENARIO.version}.json")
    events, _ = prediction_events(SCENARIO, T0, N_EVENTS, 20.0, seed=SCENARIO.seed)

    reference = _daemon(tmp_path, kafka_bootstrap, f"{topic_prefix}r")
    through_sidecar = _daemon(tmp_path, kafka_bootstrap, f"{topic_prefix}s")
    logger = PredictionLogger(bootstrap_servers=kafka_bootstrap,
                              predictions_topic=through_sidecar.settings.kafka.predictions_topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    try:
        for event in events:
            producer.send(reference.settings.kafka.predictions_topic, orjson.dumps(event),
                          key=event["prediction_id"].encode())
        producer.flush()
        with running_sidecar(logger) as url, httpx.Client(base_url=url, timeout=30) as client:
            for start in range(0, N_EVENTS, CHUNK):
                chunk = events[start:start + CHUNK]
                half = len(chunk) // 2
                for event in chunk[:half]:
                    assert logger.log_prediction(**event)
                assert client.post("/v1/predictions", json=chunk[half:]).json() == {"accepted": len(chunk) - half}
                assert logger.flush(timeout=30)  # keep event time roughly in order on the topic

        deadline = time.monotonic() + 90
        while min(_consumed(reference), _consumed(through_sidecar)) < N_EVENTS:
            assert time.monotonic() < deadline, (_consumed(reference), _consumed(through_sidecar))
            time.sleep(0.2)
    finally:
        producer.close()
        logger.close(timeout=10)
        reference.stop()  # closes the open windows
        through_sidecar.stop()

    expected = _windows(reference)
    got = _windows(through_sidecar)
    assert sorted(expected) == sorted(got)
    assert len(expected) == 6  # 3 windows x 2 segments
    assert sum(report.n_events for report in got.values()) == N_EVENTS
    for slot, want in expected.items():
        have = got[slot]
        assert have.n_events == want.n_events, slot
        assert have.feature_counts == want.feature_counts, slot
        assert have.missing_ratio == want.missing_ratio, slot
        assert set(have.drifted_features) == set(want.drifted_features), slot
        assert [(r.feature, r.method) for r in have.features] == [(r.feature, r.method) for r in want.features]
        assert [r.score for r in have.features] == pytest.approx([r.score for r in want.features], rel=1e-9)
        assert [r.score for r in have.prediction] == pytest.approx([r.score for r in want.prediction], rel=1e-9)
    # The shift is visible, so the comparison above compares informative values.
    assert any("num_0" in report.drifted_features for report in got.values())
