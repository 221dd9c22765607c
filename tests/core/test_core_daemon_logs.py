"""``driftd run --log-format json`` on the real broker: every log event a user relies on.

The daemon runs as a subprocess, as a user starts it. Its stderr must be one JSON
object per line and say, without /metrics: what it started with (the baseline and
its sha256, topics), the partitions it got, each window it closed, when a feature
started and stopped drifting, and the invalid events it dead-lettered (one line
per reason, the rest counted). SIGTERM ends it with status 0.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer

from monitor.baseline import build_baseline
from monitor.simulate import Scenario, encode, prediction_events, training_frame

pytestmark = pytest.mark.integration

DRIFTD = Path(sys.executable).with_name("driftd")
T0 = 1_767_225_600.0
WINDOW = 300
RATE = 2.0  # events per second of event time: 600 per window, about 300 per segment
NORMAL = Scenario(model="credit", version="v1", drift_features=("num_0",), seed=31)
SHIFTED = Scenario(
    model="credit", version="v1", drift_features=("num_0",), drift_start=0.0, shift=1.5, seed=31
)
TIMEOUT_S = 150


def _config(tmp_path: Path, bootstrap: str, prefix: str) -> tuple[Path, str]:
    baseline = build_baseline(
        training_frame(NORMAL, n=5_000),
        "credit",
        "v1",
        target="target",
        prediction="prediction",
        score="score",
    )
    path = baseline.save(tmp_path / "credit-v1.json")
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": f"{prefix}-g",
            "predictions_topic": f"{prefix}.predictions",
            "labels_topic": f"{prefix}.labels",
            "dead_letter_topic": f"{prefix}.dlq",
            "max_poll_interval_ms": 3000,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
        },
        "models": [{"name": "credit", "baseline": str(path)}],
        "labels": {"enabled": False},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "http": {"port": 0},
        "windows": {"size_seconds": WINDOW, "allowed_lateness_seconds": 0, "min_events": 100},
        "checkpoint": {"interval_seconds": 1},
    }
    target = tmp_path / "driftd.yaml"
    target.write_text(yaml.safe_dump(config), encoding="utf-8")
    return target, baseline.sha256


def _produce(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    n = int(2 * WINDOW * RATE)
    for phase, scenario in enumerate((NORMAL, SHIFTED, NORMAL)):
        events, _ = prediction_events(scenario, T0 + phase * 2 * WINDOW, n, RATE, seed=40 + phase)
        for value in encode(events):
            producer.send(topic, value, key=b"credit")
    # One event a window later moves the watermark past the last normal window.
    late_mover, _ = prediction_events(NORMAL, T0 + 7 * WINDOW, 1, RATE, seed=50)
    for value in [*encode(late_mover), *([b"not json at all"] * 5), b'{"model": "credit"}']:
        producer.send(topic, value, key=b"credit")
    producer.flush()
    producer.close()


def test_json_logs_tell_what_the_daemon_does(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    config, sha256 = _config(tmp_path, kafka_bootstrap, topic_prefix)
    process = subprocess.Popen(
        [str(DRIFTD), "run", "--config", str(config), "--log-format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True
    )
    reader.start()

    def seen(event: str, **fields) -> list[dict]:
        found = []
        for line in list(lines):
            document = json.loads(line)
            if document.get("event") == event and all(
                document.get(k) == v for k, v in fields.items()
            ):
                found.append(document)
        return found

    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not seen("partitions_assigned") and time.monotonic() < deadline:
            assert process.poll() is None, "".join(lines)
            time.sleep(0.2)
        _produce(kafka_bootstrap, f"{topic_prefix}.predictions")
        while time.monotonic() < deadline and not (
            seen("drift_cleared", feature="num_0")
            and seen("invalid_event")
            and len(seen("window_closed")) >= 2 * 6
        ):
            assert process.poll() is None, "".join(lines)
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        reader.join(timeout=10)
    assert code == 0, "".join(lines[-20:])
    documents = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(d) for d in documents)

    (model,) = seen("startup_model")
    assert model["baseline_sha256"] == sha256 and sha256[:12] in model["message"]
    assert seen("startup")[0]["topics"] == [f"{topic_prefix}.predictions"]
    assigned = seen("partitions_assigned")[0]
    assert f"{topic_prefix}.predictions" in assigned["partitions"] and assigned["level"] == "info"

    closed = seen("window_closed")
    starts = sorted({d["window_start"] for d in closed})
    assert starts[:6] == [T0 + i * WINDOW for i in range(6)]
    # (the window of the one event that moved the watermark closes at shutdown, untested)
    assert all(
        d["level"] == "info" and d["n_events"] >= 100
        for d in closed
        if d["window_start"] < T0 + 6 * WINDOW
    )
    shifted = [d for d in closed if 2 * WINDOW <= d["window_start"] - T0 < 4 * WINDOW]
    assert shifted and all("num_0" in d["drifted_features"] for d in shifted)

    started = seen("drift_started", feature="num_0")
    cleared = seen("drift_cleared", feature="num_0")
    assert {d["segment"] for d in started} == {"region=eu", "region=us"}
    assert all(d["level"] == "warning" and d["window_start"] == T0 + 2 * WINDOW for d in started)
    assert all(d["window_start"] == T0 + 4 * WINDOW for d in cleared) and len(cleared) == 2

    # Six bad messages: one line per reason at once, the held-back ones counted at shutdown.
    not_json = seen("invalid_event", reason="not_json")
    assert [d["suppressed"] for d in not_json] == [0, 4] and "not_json" in not_json[0]["message"]
    assert "(+4 more since the last line)" in not_json[1]["message"]
    assert len(seen("invalid_event", reason="schema")) == 1
