"""Labels that arrive after a restart reach windows closed before it (through the store).

Daemon 1 reads the predictions of three windows, closes and stores them, and stops.
Daemon 2 (same store, same consumer group) then reads every label: each stored window
must end with all its labels and the accuracy an offline computation gives; before,
such labels were dropped ("too old to update in memory") and the windows kept 0 labels.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer
from sklearn.metrics import accuracy_score

from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.store import open_store
from tests.truth.test_truth_daemon import _wait

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 60
T0 = 1_700_000_040.0  # aligned to the 60 s grid
PER_WINDOW = 400
N_WINDOWS = 3


def test_labels_after_a_restart_update_the_stored_windows(kafka_bootstrap, topic_prefix, tmp_path) -> None:
    rng = np.random.default_rng(7)
    ref_x = rng.normal(size=10_000)
    ref_score = 1 / (1 + np.exp(-1.5 * ref_x))
    frame = pd.DataFrame({"x": ref_x, "y": (rng.random(10_000) < ref_score).astype(int),
                          "pred": (ref_score >= 0.5).astype(int), "score": ref_score})
    path = build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score",
                          task="binary").save(tmp_path / "m-v1.json")
    n = PER_WINDOW * N_WINDOWS
    x = rng.normal(size=n)
    score = 1 / (1 + np.exp(-1.5 * x))
    label = (rng.random(n) < score).astype(int)
    times = T0 + np.repeat(np.arange(N_WINDOWS) * WINDOW, PER_WINDOW) + rng.uniform(0, WINDOW - 1, n)
    ids = [f"{topic_prefix}-{i}" for i in range(n)]
    settings = load_settings(
        None,
        kafka={"bootstrap_servers": kafka_bootstrap, "predictions_topic": f"{topic_prefix}.p",
               "labels_topic": f"{topic_prefix}.l", "dead_letter_topic": f"{topic_prefix}.dlq",
               "group_id": topic_prefix, "max_poll_interval_ms": 3000, "session_timeout_ms": 6000,
               "heartbeat_interval_ms": 500, "poll_timeout_ms": 100},
        windows={"size_seconds": WINDOW, "allowed_lateness_seconds": 10, "min_events": 10,
                 "idle_timeout_seconds": 2},
        models=[{"name": "m", "baseline": str(path)}], labels={"pending_ttl_seconds": 10 * 365 * 86_400},
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"}, http={"port": 0}, checkpoint={"interval_seconds": 1},
    )
    store = open_store(settings.store.url)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=10)
    for i in range(n):
        producer.send(settings.kafka.predictions_topic, orjson.dumps({
            "model": "m", "model_version": "v1", "prediction_id": ids[i], "timestamp": float(times[i]),
            "features": {"x": float(x[i])}, "prediction": int(score[i] >= 0.5),
            "scores": {"1": float(score[i]), "0": float(1 - score[i])}}))
    producer.send(settings.kafka.labels_topic, orjson.dumps(  # the labels topic exists from the start
        {"prediction_id": "nobody", "label": 0, "model": "m", "timestamp": T0}))
    producer.flush()

    def stored() -> list:
        return [store.window_report("m", "v1", "", T0 + k * WINDOW) for k in range(N_WINDOWS)]

    first = Daemon(settings).start()
    try:  # the stream stops: the partitions go idle and every window closes
        _wait(lambda: all(r is not None for r in stored()), 90, "the three windows in the store")
    finally:
        first.stop()
    assert [r.n_labels for r in stored()] == [0] * N_WINDOWS

    second = Daemon(settings).start()
    try:
        for i in rng.permutation(n).tolist():
            producer.send(settings.kafka.labels_topic, orjson.dumps(
                {"prediction_id": ids[i], "label": int(label[i]), "model": "m", "timestamp": float(times[i] + 120)}))
        producer.flush()
        _wait(lambda: [r.n_labels for r in stored()] == [PER_WINDOW] * N_WINDOWS, 90,
              "every label in the stored windows")
    finally:
        second.stop()
        producer.close()
    for k, report in enumerate(stored()):
        rows = slice(k * PER_WINDOW, (k + 1) * PER_WINDOW)
        expected = accuracy_score(label[rows], (score[rows] >= 0.5).astype(int))
        assert report.performance["accuracy"][0] == pytest.approx(expected, abs=1e-12)
    store.engine.dispose()
