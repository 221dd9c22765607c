"""On the real broker, in-process: labels that show a performance drop make one retrain request.

Predictions of a calibrated model fill three windows; labels then arrive on their own
topic, every one the opposite of the predicted class. The windows' realised
performance falls far beyond ``alerts.performance_tolerance``: the daemon emits one
``performance_dropped`` request (one per cooldown, however many windows dropped) with
the metric, its interval and the baseline, and the label coverage of its window.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer

from monitor.baseline import build_baseline
from monitor.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "retrain_request.v1.json").read_text())
WINDOW = 60
T0 = 1_700_000_040.0
PER_WINDOW = 600
N_WINDOWS = 3


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_performance_drop_emits_one_request(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    from monitor.daemon import Daemon

    rng = np.random.default_rng(5)
    ref_x = rng.normal(size=20_000)
    ref_score = 1 / (1 + np.exp(-2.0 * ref_x))
    frame = pd.DataFrame({"x": ref_x, "y": (rng.random(20_000) < ref_score).astype(int),
                          "pred": (ref_score >= 0.5).astype(int), "score": ref_score})
    path = build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="binary").save(tmp_path / "m.json")

    n = PER_WINDOW * N_WINDOWS
    x = rng.normal(size=n)
    score = 1 / (1 + np.exp(-2.0 * x))
    times = T0 + np.repeat(np.arange(N_WINDOWS) * WINDOW, PER_WINDOW) + rng.uniform(0, WINDOW - 1, n)
    ids = [f"{topic_prefix}-{i}" for i in range(n)]
    topic = f"{topic_prefix}.retrain"
    settings = load_settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "predictions_topic": f"{topic_prefix}.predictions",
               "labels_topic": f"{topic_prefix}.labels", "dead_letter_topic": f"{topic_prefix}.dead",
               "group_id": topic_prefix, "max_poll_interval_ms": 3000, "session_timeout_ms": 6000,
               "heartbeat_interval_ms": 1000, "poll_timeout_ms": 100},
        windows={"size_seconds": WINDOW, "allowed_lateness_seconds": 300, "min_events": 10},
        models=[{"name": "m", "baseline": str(path)}],
        labels={"pending_ttl_seconds": 86_400},
        http={"port": 0}, baseline_dir=str(tmp_path),
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
        retrain={"enabled": True, "drift_trigger": "off", "min_labels": 100, "topic": topic},
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(n):
        producer.send(settings.kafka.predictions_topic, orjson.dumps({
            "model": "m", "model_version": "v1", "prediction_id": ids[i], "timestamp": float(times[i]),
            "features": {"x": float(x[i])}, "prediction": int(score[i] >= 0.5),
            "scores": {"1": float(score[i]), "0": float(1 - score[i])},
        }))
    producer.send(settings.kafka.labels_topic, orjson.dumps({"prediction_id": "none", "label": 0, "model": "m", "timestamp": T0}))
    producer.flush()

    daemon = Daemon(settings).start()
    try:
        registry = daemon.registry
        _wait(lambda: (registry.get_sample_value("driftd_events_total", {"model": "m", "version": "v1"}) or 0) >= n, 90, "predictions")
        producer.send(settings.kafka.predictions_topic, orjson.dumps({
            "model": "m", "model_version": "v1", "prediction_id": f"{topic_prefix}-tick", "timestamp": T0 + 20 * WINDOW,
            "features": {"x": 0.0}, "prediction": 0, "scores": {"1": 0.4, "0": 0.6}}))
        producer.flush()
        _wait(lambda: (registry.get_sample_value("driftd_windows_closed_total", {"model": "m"}) or 0) >= N_WINDOWS, 90, "windows to close")
        for i in range(n):  # every label contradicts the prediction
            producer.send(settings.kafka.labels_topic, orjson.dumps({
                "prediction_id": ids[i], "label": 1 - int(score[i] >= 0.5), "model": "m", "timestamp": float(times[i] + 600)}))
        producer.flush()
        producer.close()
        _wait(lambda: any(r.published_at for r in daemon.store.retrain_requests()), 120, "a published retrain request")
        _wait(lambda: (registry.get_sample_value("driftd_labels_total", {"outcome": "joined"}) or 0) >= n, 90, "every label")
        time.sleep(2)
        assert registry.get_sample_value("driftd_retrain_requests_total", {"model": "m", "reason": "performance_dropped"}) == 1
    finally:
        daemon.stop()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=5000)
    messages = list(consumer)
    consumer.close()
    assert len(messages) == 1
    event = orjson.loads(messages[0].value)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(event)
    assert event["reason"] == "performance_dropped" and event["model"] == "m"
    performance = event["performance"]
    assert performance["tolerance"] == 0.05 and performance["baseline"] > 0.5
    higher_is_better = performance["metric"] not in ("log_loss", "mae", "rmse")
    if higher_is_better:
        assert performance["upper"] < performance["baseline"] * 0.95
    assert event["label_coverage"] >= 100 / PER_WINDOW
    assert len(event["windows"]) == 1 and event["windows"][0]["n_labels"] >= 100
