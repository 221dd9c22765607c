"""A restore never crashes on its own state, and a state it cannot read is reported.

* Property: for generated streams (predictions over partitions, labels early, late,
  duplicated or unknown, NaN scores, timestamps far ahead that leave the label clock
  unset, empty maps) the whole pipeline state written by a checkpoint restores into a
  fresh pipeline and writes back byte for byte the same.
* A corrupt checkpoint gives a clear log line, ``driftd_checkpoint_restore_failures``
  and a not-ready daemon with the reason in /readyz; ``--reset-state`` starts from
  empty state instead.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.truth import GroundTruth

T0 = 1_767_225_600.0
_FRAME = None


def _baseline():
    global _FRAME
    if _FRAME is None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=2000)
        score = 1 / (1 + np.exp(-x))
        _FRAME = pd.DataFrame({"x": x, "c": rng.choice(["a", "b", "c"], 2000), "y": (rng.random(2000) < score).astype(int),
                               "pred": (score >= 0.5).astype(int), "score": score})
    return build_baseline(_FRAME, "m", "v1", target="y", prediction="pred", score="score", task="binary")


BASELINE = _baseline()


def _pipeline() -> Pipeline:
    config = load_settings(None, models=[{"name": "m"}], windows={"size_seconds": 60, "allowed_lateness_seconds": 5,
                                                                  "min_events": 5})
    _, metrics, collector = create_metrics(100)
    registry = BaselineRegistry(config)
    registry.add(BASELINE)
    truth = GroundTruth(config.labels, {m.name: m for m in config.models}, registry.get, metrics, 60.0)
    return Pipeline(config, metrics, collector, registry, truth=truth)


events = st.lists(
    st.tuples(
        st.integers(0, 3),  # partition
        st.floats(0, 900),  # seconds after T0
        st.one_of(st.floats(0, 1), st.just(float("nan"))),  # score
        st.sampled_from(["label", "none", "early", "twice", "unknown", "future"]),
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=events, cut=st.integers(0, 60))
def test_every_checkpoint_restores_and_writes_back_the_same(stream, cut) -> None:
    pipeline = _pipeline()
    predictions, labels, positions = [], [], []
    for i, (partition, dt, score, fate) in enumerate(stream):
        pid = f"p{i}"
        predictions.append(orjson.dumps({
            "model": "m", "model_version": "v1", "prediction_id": pid, "timestamp": T0 + dt,
            "features": {"x": dt / 100, "c": "abc"[i % 3]}, "prediction": int(i % 2),
            **({} if np.isnan(score) else {"scores": {"1": score, "0": 1 - score}})}))
        positions.append((partition << 40) | i)
        when = {"future": time.time() + 2 * 86_400 - 3600 * 30}.get(fate, T0 + dt + 30)
        if fate in ("label", "twice", "early", "future"):
            labels.append(orjson.dumps({"prediction_id": pid, "label": i % 2, "timestamp": when, "model": "m"}))
        if fate == "twice":
            labels.append(labels[-1])
        if fate == "unknown":
            labels.append(orjson.dumps({"prediction_id": f"nobody-{i}", "label": 1, "timestamp": T0, "model": "m"}))
    early = [v for v in labels if b'"p' in v][: len(labels) // 3]
    pipeline.process_labels(early)  # some labels come before their predictions
    pipeline.process_predictions(predictions[:cut], positions[:cut])
    pipeline.close_due()
    pipeline.process_predictions(predictions[cut:], positions[cut:])
    pipeline.process_labels(labels)
    state = orjson.dumps(pipeline.to_state(), option=orjson.OPT_SERIALIZE_NUMPY)
    restored = _pipeline()
    restored.restore(orjson.loads(state))
    assert orjson.dumps(restored.to_state(), option=orjson.OPT_SERIALIZE_NUMPY) == state


def test_an_empty_pipeline_round_trips() -> None:
    state = orjson.dumps(_pipeline().to_state(), option=orjson.OPT_SERIALIZE_NUMPY)
    restored = _pipeline()
    restored.restore(orjson.loads(state))
    assert orjson.dumps(restored.to_state(), option=orjson.OPT_SERIALIZE_NUMPY) == state


def _readyz(port: int) -> tuple[int, dict]:
    try:
        response = urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3)
        return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.integration
def test_a_corrupt_checkpoint_is_reported_and_the_daemon_is_not_ready(tmp_path: Path, kafka_bootstrap: str,
                                                                      topic_prefix: str, caplog) -> None:
    from monitor.daemon import Daemon
    from monitor.store import open_store

    path = BASELINE.save(tmp_path / "m-v1.json")
    config = load_settings(None, kafka={"bootstrap_servers": kafka_bootstrap, "group_id": topic_prefix,
                                        "predictions_topic": f"{topic_prefix}.p", "labels_topic": f"{topic_prefix}.l",
                                        "session_timeout_ms": 6000, "heartbeat_interval_ms": 500},
                           models=[{"name": "m", "baseline": str(path)}], http={"port": 0},
                           store={"url": f"sqlite:///{tmp_path / 's.db'}"})
    store = open_store(config.store.url)
    name = f"{topic_prefix}:{topic_prefix}.p"
    store.save_checkpoint(name, {f"{topic_prefix}.p:0": 5}, b'{"windows": {"open": [["broken"]]}}')
    caplog.set_level(logging.WARNING)
    daemon = Daemon(config).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.consumer.state_error is None:
            time.sleep(0.2)
        status, body = _readyz(daemon.http.port)
        assert status == 503 and "cannot be read" in body.get("state_error", ""), body
        assert daemon.registry.get_sample_value("driftd_checkpoint_restore_failures_total") == 1
        assert "--reset-state" in caplog.text
        assert daemon.health()[0]  # alive, deliberately idle: a restart would not help
    finally:
        daemon.stop()

    again = Daemon(config)
    again.consumer.reset_state = True
    again.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _readyz(again.http.port)[0] != 200:
            time.sleep(0.5)
        assert _readyz(again.http.port)[0] == 200
        assert again.consumer.state_error is None
    finally:
        again.stop()
    store.engine.dispose()
