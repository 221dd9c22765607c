"""Helpers of the event-time tests: one stream, many ways to lay it on partitions.

The stream is 13 one-minute windows of the credit model at 25 events/s with a shift
from the seventh window on. A run creates a topic with N partitions, produces the
stream with a layout (keyed by model, unkeyed, keyed by prediction id, or placed
partition by partition), starts one daemon on the real broker and collects the first
12 windows (the 13th only carries the watermark past them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
from kafka import KafkaProducer

from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.simulate import Scenario, prediction_events, training_frame
from tests.explainers.kafka_workers import create_topic

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a multiple of the window size
WINDOW = 60.0
N_WINDOWS = 12  # compared; one more window of events carries the watermark past them
RATE = 25.0
SCENARIO = Scenario(model="credit", version="v1", drift_features=("num_0", "num_1"),
                    drift_start=T0 + 6 * WINDOW, shift=1.0, seed=31)
EVENTS, _ = prediction_events(SCENARIO, T0, int((N_WINDOWS + 1) * WINDOW * RATE), RATE, seed=32)
COMPARED = T0 + N_WINDOWS * WINDOW


@dataclass
class Run:
    windows: dict[tuple[str, float], object]  # (segment, window start) -> WindowReport
    late: float
    invalid: dict[str, float]
    dead_letters: list[tuple[str, bytes]]


def baseline_dir(root: Path) -> Path:
    path = root / "baselines" / "credit" / "v1.json"
    if not path.exists():
        frame = training_frame(SCENARIO, n=10_000)
        build_baseline(frame, "credit", "v1", target="target", prediction="prediction", score="score").save(path)
    return root / "baselines"


def settings_for(root: Path, bootstrap: str, prefix: str, **windows: object):
    return load_settings(
        None,
        kafka={"bootstrap_servers": bootstrap, "group_id": f"{prefix}-g", "predictions_topic": f"{prefix}.p",
               "labels_topic": f"{prefix}.l", "dead_letter_topic": f"{prefix}.dlq", "max_poll_interval_ms": 5000,
               "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "max_poll_records": 2000},
        models=[{"name": "credit"}], baseline_dir=str(baseline_dir(root)),
        store={"url": f"sqlite:///{root / f'{prefix}.db'}"}, http={"port": 0}, labels={"enabled": False},
        windows={"size_seconds": int(WINDOW), "allowed_lateness_seconds": 10, "min_events": 100,
                 "idle_timeout_seconds": 3, **windows},
        checkpoint={"interval_seconds": 1},
    )


Layout = Callable[[KafkaProducer, str, list[dict]], None]


def keyed_by_model(producer: KafkaProducer, topic: str, events: list[dict]) -> None:
    for event in events:
        producer.send(topic, orjson.dumps(event), key=b"credit")


def unkeyed(producer: KafkaProducer, topic: str, events: list[dict]) -> None:
    for event in events:
        producer.send(topic, orjson.dumps(event))


def keyed_by_prediction_id(producer: KafkaProducer, topic: str, events: list[dict]) -> None:
    for event in events:
        producer.send(topic, orjson.dumps(event), key=event["prediction_id"].encode())


def by_partition(place: Callable[[int, dict], int | None]) -> Layout:
    """A layout that puts event ``i`` on partition ``place(i, event)`` (None: not sent)."""
    def layout(producer: KafkaProducer, topic: str, events: list[dict]) -> None:
        for i, event in enumerate(events):
            partition = place(i, event)
            if partition is not None:
                producer.send(topic, orjson.dumps(event), partition=partition)
    return layout


def produce(bootstrap: str, topic: str, layout: Layout, events: Iterable[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=64_000)
    try:
        layout(producer, topic, list(events))
        producer.flush()
    finally:
        producer.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def compared_windows(daemon: Daemon, until: float = COMPARED) -> dict[tuple[str, float], object]:
    return {(key.segment, start): report for (key, start), report in list(daemon.pipeline.recent.items())
            if start < until}


def run(root: Path, bootstrap: str, prefix: str, partitions: int, layout: Layout, *,
        events: list[dict] | None = None, during: Callable[[Daemon], None] | None = None,
        expect_windows: int = 2 * N_WINDOWS, until: float = COMPARED, timeout: float = 120,
        **windows: object) -> Run:
    """Produce (before the daemon starts: a backlog read from cold), consume, collect."""
    settings = settings_for(root, bootstrap, prefix, **windows)
    create_topic(bootstrap, settings.kafka.predictions_topic, partitions)
    if during is None:
        produce(bootstrap, settings.kafka.predictions_topic, layout, EVENTS if events is None else events)
    daemon = Daemon(settings).start()
    try:
        if during is not None:
            during(daemon)
        wait_until(lambda: len(compared_windows(daemon, until)) >= expect_windows, timeout, f"{expect_windows} windows")
        metrics = daemon.metrics
        late = metrics.late_events.labels(model="credit")._value.get()
        invalid = {r: metrics.invalid_events.labels(reason=r)._value.get() for r in ("bad_timestamp", "schema")}
        windows_seen = compared_windows(daemon, until)
    finally:
        daemon.stop()
    return Run(windows_seen, late, invalid, read_dead_letters(bootstrap, settings.kafka.dead_letter_topic))


def read_dead_letters(bootstrap: str, topic: str) -> list[tuple[str, bytes]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, group_id=None)
    try:
        return [(dict(m.headers).get("driftd-reason", b"").decode(), m.value) for m in consumer]
    finally:
        consumer.close()


def assert_same_windows(got: Run, want: Run) -> None:
    """Every compared window: events, scores and decisions as on one partition; nothing late."""
    assert got.late == 0
    compared = {slot for slot in got.windows if slot[1] < COMPARED}
    assert compared == set(want.windows), sorted(set(want.windows) ^ compared)
    for slot, expected in want.windows.items():
        report = got.windows[slot]
        assert report.n_events == expected.n_events, slot
        assert report.drifted_features == expected.drifted_features, slot
        scores = {(r.feature, r.method): r.score for r in report.features}
        for result in expected.features:
            score = scores[(result.feature, result.method)]
            assert math.isclose(score, result.score, rel_tol=1e-9, abs_tol=1e-12), (slot, result.feature)
