"""A demo-like run for the dashboards end-to-end test: config, baseline, model, traffic.

One model (``credit``) whose inputs shift from the fourth window on, a new category
appears, labels arrive after their predictions, a few messages break the contract,
some events arrive later than the allowed lateness, and the explanation queue is
small enough to drop work. Event time starts in the past so windows close as soon
as the stream moves past them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from monitor.baseline import build_baseline
from monitor.simulate import Scenario, label_events, prediction_events, training_frame

MODEL, VERSION = "credit", "v1"
WINDOW_SECONDS = 60
N_WINDOWS = 10
RATE = 6.0  # events per event-time second
DRIFT_WINDOW = 4


@dataclass(frozen=True)
class DemoRun:
    config_path: Path
    scenario: Scenario
    start: float


def prepare(workdir: Path, *, bootstrap: str, topic_prefix: str, port: int,
            store_url: str | None = None, explain: bool = True) -> DemoRun:
    """Baseline, model file and ``driftd.yaml`` for a run starting ``N_WINDOWS`` windows ago."""
    now = time.time()
    start = (now // WINDOW_SECONDS - N_WINDOWS - 2) * WINDOW_SECONDS
    scenario = Scenario(model=MODEL, version=VERSION, drift_features=("num_0", "num_1", "num_2"),
                        drift_start=start + DRIFT_WINDOW * WINDOW_SECONDS, shift=1.5, seed=11)
    frame = training_frame(scenario, n=4000)
    importances = None
    model_entry: dict[str, object] = {"name": MODEL}
    if explain:
        from explainers import global_importances
        from explainers.demo_model import train_demo_model

        model_file = train_demo_model(frame.drop(columns=["prediction", "score"]), "target",
                                      workdir / "models" / "credit.txt", n_estimators=20)
        features = frame.drop(columns=["target", "prediction", "score"])
        importances = global_importances(model_file, features, sample_size=300)
        model_entry["model_file"] = str(model_file)
    baseline = build_baseline(frame, MODEL, VERSION, target="target", prediction="prediction",
                              score="score", importances=importances, source="dashboards e2e")
    model_entry["baseline"] = str(baseline.save(workdir / "baselines" / MODEL / f"{VERSION}.json"))
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "predictions_topic": f"{topic_prefix}.predictions",
            "labels_topic": f"{topic_prefix}.labels",
            "dead_letter_topic": f"{topic_prefix}.dead-letter",
            "group_id": f"{topic_prefix}-driftd",
            "max_poll_interval_ms": 3000, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
        },
        "windows": {"size_seconds": WINDOW_SECONDS, "allowed_lateness_seconds": 10, "min_events": 50,
                    "idle_timeout_seconds": 2},  # empty partitions of the topic stop holding the watermark soon
        "models": [model_entry],
        "baseline_dir": str(workdir / "baselines"),
        "store": {"url": store_url or f"sqlite:///{workdir / 'driftd.db'}"},
        "http": {"host": "127.0.0.1", "port": port},
        "checkpoint": {"interval_seconds": 1},
        # Labels come 5 s after their predictions: errors settle for the sequential detectors soon.
        "labels": {"settle_seconds": 10},
        "explain": {"enabled": explain, "workers": 1, "queue_size": 2000, "base_rate": 0.3,
                    "max_per_second": 50},
    }
    path = workdir / "driftd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return DemoRun(path, scenario, start)


def produce(run: DemoRun, bootstrap: str, topic_prefix: str, pause: float = 0.8,
            between_windows: Callable[[int], None] | None = None) -> None:
    """Send the windows one by one (``pause`` wall seconds apart), labels one window behind.

    ``between_windows(i)`` runs after window ``i`` was sent (fault injection).
    """
    from kafka import KafkaProducer

    predictions, labels_topic = f"{topic_prefix}.predictions", f"{topic_prefix}.labels"
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    per_window = int(WINDOW_SECONDS * RATE)
    pending: list[dict] = []
    try:
        for window in range(N_WINDOWS):
            window_start = run.start + window * WINDOW_SECONDS
            events, truth = prediction_events(run.scenario, window_start, per_window, RATE, seed=100 + window)
            if window >= DRIFT_WINDOW:
                for event in events[::5]:
                    event["features"]["cat_0"] = "never-seen"
            for event in events:
                producer.send(predictions, orjson.dumps(event), key=MODEL.encode())
            for label in pending:
                producer.send(labels_topic, orjson.dumps(label), key=b"labels")
            pending = label_events(events, truth, delay=5.0, seed=window, coverage=0.9)
            producer.flush(timeout=10)
            if window == N_WINDOWS // 2:
                _bad_input(producer, predictions, run.start)
            if window == N_WINDOWS - 1:  # a second one: rate() needs the counter to grow
                _type_error(producer, predictions, window_start)
            if between_windows is not None:
                between_windows(window)
            time.sleep(pause)
        for label in pending:
            producer.send(labels_topic, orjson.dumps(label), key=b"labels")
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def _bad_input(producer: object, topic: str, start: float) -> None:
    """Messages that break the contract and events later than the allowed lateness."""
    send = producer.send  # type: ignore[attr-defined]
    send(topic, b"{not json")
    send(topic, orjson.dumps({"model": MODEL, "features": {}}))  # schema: fields missing
    send(topic, orjson.dumps({"model": "nobody", "model_version": "v1", "prediction_id": "x",
                              "timestamp": start + 100, "features": {"a": 1}, "prediction": 1}))
    _type_error(producer, topic, start + 100)
    late, _ = prediction_events(Scenario(model=MODEL, version=VERSION, seed=5), start, 20, RATE, seed=7)
    for event in late:
        send(topic, orjson.dumps(event), key=MODEL.encode())


def _type_error(producer: object, topic: str, at: float) -> None:
    """A numeric feature sent as text: counted as a type error, the value as missing."""
    typed, _ = prediction_events(Scenario(model=MODEL, version=VERSION, seed=6), at, 1, RATE, seed=8)
    typed[0]["features"]["num_0"] = "not a number"
    producer.send(topic, orjson.dumps(typed[0]), key=MODEL.encode())  # type: ignore[attr-defined]
