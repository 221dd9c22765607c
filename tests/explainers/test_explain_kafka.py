"""Explanations in the running daemon, fed from the real broker.

* With SHAP on, every sampled prediction (picked by an independent re-implementation
  of the sampling hash) has its explanation in the store, additive to the model's
  log-odds, and closed windows carry an attribution summary; predictions whose
  label (on the labels topic) shows them wrong are explained too, with reason
  ``wrong``.
* Under an explain rate that saturates the pool, ingest throughput stays at >= 90 %
  of the SHAP-off run and the drops are counted.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from explainers import global_importances, load_model
from explainers.demo_model import train_demo_model
from explainers.encoding import FeatureEncoder
from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.simulate import Scenario, encode, prediction_events, training_frame

pytestmark = pytest.mark.integration
shap = pytest.importorskip("shap")

T0 = 1_767_225_600.0  # a multiple of the window size
SCENARIO = Scenario(model="credit", version="v1", seed=31)
BASE_RATE = 0.05
_MASK = (1 << 64) - 1


def sampled(prediction_id: str, rate: float) -> bool:
    """The documented sampling rule, written out independently of explainers.sampling."""
    h = 0xCBF29CE484222325
    for char in prediction_id:
        h = ((h ^ ord(char)) * 0x100000001B3) & _MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _MASK
    h ^= h >> 31
    return (h >> 11) / 2.0**53 < rate


@pytest.fixture(scope="module")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("credit")
    frame = training_frame(SCENARIO, n=20_000)
    features = frame.drop(columns=["prediction", "score"])
    path = train_demo_model(features, "target", directory / "credit.txt")
    importances = global_importances(path, features.drop(columns=["target"]))
    baseline = build_baseline(frame, SCENARIO.model, SCENARIO.version, target="target", prediction="prediction",
                              score="score", importances=importances)
    baseline_dir = directory / "baselines"
    baseline.save(baseline_dir / SCENARIO.model / f"{SCENARIO.version}.json")
    return {"path": path, "baseline_dir": baseline_dir}


def _settings(tmp_path: Path, kafka_bootstrap: str, topic: str, group: str, model: dict, explain: dict,
              labels: bool = False):
    return load_settings(
        None,
        kafka={
            "bootstrap_servers": kafka_bootstrap, "group_id": group,
            "predictions_topic": topic, "labels_topic": f"{topic}.labels",
            "dead_letter_topic": f"{topic}.dlq", "max_poll_interval_ms": 3000,
            "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
        },
        models=[{"name": SCENARIO.model, "model_file": str(model["path"])}],
        baseline_dir=str(model["baseline_dir"]),
        store={"url": f"sqlite:///{tmp_path / f'{group}.db'}"},
        http={"port": 0},
        windows={"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 200},
        checkpoint={"interval_seconds": 1},
        labels={"enabled": labels},
        explain=explain,
    )


def _produce(kafka_bootstrap: str, topic: str, events: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, batch_size=256 * 1024)
    for value in encode(events):
        producer.send(topic, value, key=b"credit")
    producer.flush()
    producer.close()


def _wait(condition, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_every_sampled_prediction_is_explained_in_the_store(
    credit_model: dict, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.predictions"
    n = 12_000  # 10 minutes of event time: two windows, the first closed by the watermark
    events, _ = prediction_events(SCENARIO, T0, n, 20.0, seed=5)
    explain = {"enabled": True, "workers": 1, "queue_size": 20_000, "base_rate": BASE_RATE,
               "near_threshold_band": 0.0, "drifted_window_rate": 0.0, "max_per_second": 1e6}
    daemon = Daemon(_settings(tmp_path, kafka_bootstrap, topic, f"{topic_prefix}-g", credit_model, explain, labels=True))
    # Labels for 300 recent predictions (still in the recent-rows cache), every third one wrong.
    labelled = events[-300:]
    wrong = {e["prediction_id"] for e in labelled[::3]}
    label_values = [{"prediction_id": e["prediction_id"], "timestamp": e["timestamp"] + 60, "model": "credit",
                     "label": 1 - e["prediction"] if e["prediction_id"] in wrong else e["prediction"]}
                    for e in labelled]
    try:
        assert daemon.explainer is not None and daemon.explainer.load_errors == {}
        daemon.start()
        _produce(kafka_bootstrap, topic, events)
        _produce(kafka_bootstrap, f"{topic}.labels", label_values)
        base_rate_sampled = {e["prediction_id"] for e in events if sampled(e["prediction_id"], BASE_RATE)}
        expected = base_rate_sampled | wrong
        registry = daemon.registry
        stored_count = lambda: registry.get_sample_value("driftd_explanations_total", {"model": "credit"}) or 0  # noqa: E731
        assert _wait(lambda: (registry.get_sample_value("driftd_events_total", {"model": "credit", "version": "v1"}) or 0) >= n, 90)
        assert _wait(lambda: stored_count() >= len(expected), 120), (stored_count(), len(expected))
        assert daemon.writer.flush(30)
        assert _wait(lambda: any(r.attribution is not None for r in daemon.pipeline.recent.values()), 30)
        reports = list(daemon.pipeline.recent.values())
        store = daemon.store
        assert (registry.get_sample_value("driftd_explain_dropped_total", {"model": "credit", "reason": "queue_full"}) or 0) == 0
    finally:
        daemon.stop()

    from monitor.store import open_store

    store = open_store(daemon.settings.store.url)
    by_id = {}
    for window_start in (T0, T0 + 300):
        for record in store.explanations_for_window("credit", "v1", window_start, limit=10_000):
            by_id[record.prediction_id] = record
    assert set(by_id) == expected
    assert stored_count() == len(expected)
    assert abs(len(base_rate_sampled) / n - BASE_RATE) < 4 * math.sqrt(BASE_RATE * (1 - BASE_RATE) / n)

    # Each stored explanation: right window and segment, and additive to the model's log-odds.
    source = {e["prediction_id"]: e for e in events}
    loaded = load_model(credit_model["path"])
    encoder = FeatureEncoder(loaded.feature_names, loaded.categories)
    import pandas as pd

    ids = sorted(by_id)
    frame = pd.DataFrame([source[i]["features"] for i in ids])
    margins = loaded.output(encoder.from_frame(frame))[:, 0]
    totals = np.array([by_id[i].base_value + sum(by_id[i].shap_values.values()) for i in ids])
    np.testing.assert_allclose(totals, margins, atol=1e-6)
    for i in ids:
        record, event = by_id[i], source[i]
        assert record.window_start.timestamp() == T0 + 300 * ((event["timestamp"] - T0) // 300)
        assert record.segment == f"region={event['segment']['region']}"
        # Sampled first; a wrong prediction already explained is not explained again.
        assert record.reason == ("base_rate" if i in base_rate_sampled else "wrong")
        assert record.explainer == "tree/log_odds"

    # Closed windows carry attribution: same model, same inputs as the baseline -> no drift.
    with_attribution = [r for r in reports if r.attribution is not None]
    assert with_attribution
    for report in with_attribution:
        summary = report.attribution
        assert summary.n_explanations == sum(
            1 for i in ids if by_id[i].segment == report.key.segment and by_id[i].window_start.timestamp() == report.window_start
        )
        assert summary.ndcg > 0.9 and not summary.drifted
    store.close()


def _ingest_seconds(daemon: Daemon, n: int, timeout: float = 180) -> float:
    """Wall time from the first to the n-th accepted event."""
    registry = daemon.registry
    accepted = lambda: registry.get_sample_value("driftd_events_total", {"model": "credit", "version": "v1"}) or 0  # noqa: E731
    deadline = time.monotonic() + timeout
    while accepted() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.perf_counter()
    while accepted() < n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert accepted() >= n, f"only {accepted()} of {n} events ingested"
    return time.perf_counter() - started


@pytest.mark.slow
def test_saturated_explanations_never_block_ingest(
    credit_model: dict, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """With the pool saturated, every event is still ingested and the overflow is counted.

    How fast ingest stays with SHAP on versus off is a benchmark, not a test: it is
    measured as a ratio in ``bench/explain.py`` (machines are noisy).
    """
    topic = f"{topic_prefix}.predictions"
    n = 20_000
    events, _ = prediction_events(SCENARIO, T0, n, 200.0, seed=6)
    _produce(kafka_bootstrap, topic, events)
    on = {"enabled": True, "workers": 1, "queue_size": 500, "base_rate": 1.0, "max_per_second": 1e9}
    daemon = Daemon(_settings(tmp_path, kafka_bootstrap, topic, f"{topic_prefix}-on", credit_model, on))
    try:
        assert daemon.explainer.wait_ready(180)
        daemon.start()
        _ingest_seconds(daemon, n)  # asserts every event was ingested
        registry = daemon.registry
        value = lambda name, **labels: registry.get_sample_value(name, {"model": "credit", **labels}) or 0  # noqa: E731
        # Every event was offered (rate 1, no budget): each one ends up explained and
        # written, or counted as dropped because the queue was full.
        accounted = lambda: value("driftd_explanations_total") + value("driftd_explain_dropped_total", reason="queue_full")  # noqa: E731
        assert _wait(lambda: accounted() == n, 60), accounted()
        dropped = value("driftd_explain_dropped_total", reason="queue_full")
        explained = value("driftd_explanations_total")
        other_drops = sum(s.value for f in registry.collect() if f.name == "driftd_explain_dropped"
                          for s in f.samples if s.name.endswith("_total") and s.labels["reason"] != "queue_full")
    finally:
        daemon.stop()
    assert dropped > 0, "the pool was not saturated"
    assert explained > 0, "the workers explained nothing"
    assert other_drops == 0


def test_kafka_mode_daemon_publishes_and_an_explain_worker_fills_the_reports(
    credit_model: dict, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, pg_schema_url: str
) -> None:
    """explain.mode kafka end to end: the daemon samples and publishes, a ``driftd
    explain-worker`` process explains into PostgreSQL, and the daemon's window reports
    get their attribution from the sums the worker stored."""
    from tests.explainers.kafka_workers import WorkerProcesses, create_topic, write_config

    topic = f"{topic_prefix}.predictions"
    n = 6_000  # two windows of event time, the first closed by the watermark
    events, _ = prediction_events(SCENARIO, T0, n, 10.0, seed=7)
    explain_topic = f"{topic_prefix}.explain"
    create_topic(kafka_bootstrap, explain_topic, partitions=2)
    config = write_config(
        tmp_path, bootstrap=kafka_bootstrap, topic=explain_topic, group=f"{topic_prefix}-workers",
        store_url=pg_schema_url, models={SCENARIO.model: credit_model["path"]},
        extra={"kafka": {"predictions_topic": topic, "labels_topic": f"{topic}.labels",
                         "dead_letter_topic": f"{topic}.dlq", "group_id": f"{topic_prefix}-g",
                         "max_poll_interval_ms": 3000},
               "explain": {"base_rate": BASE_RATE, "drifted_window_rate": 0.0},
               "windows": {"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 200},
               "checkpoint": {"interval_seconds": 1}, "labels": {"enabled": False}},
    )
    text = config.read_text() + f"baseline_dir: {credit_model['baseline_dir']}\n"
    config.write_text(text)
    expected = {e["prediction_id"] for e in events if sampled(e["prediction_id"], BASE_RATE)}
    per_window: dict[tuple[str, float], int] = {}
    for e in events:
        if e["prediction_id"] in expected:
            key = (f"region={e['segment']['region']}", T0 + 300 * ((e["timestamp"] - T0) // 300))
            per_window[key] = per_window.get(key, 0) + 1

    def attributed() -> bool:
        reports = list(daemon.pipeline.recent.values())
        return bool(reports) and all(
            r.attribution is not None and r.attribution.n_explanations == per_window.get((r.key.segment, r.window_start))
            for r in reports)

    from monitor.store import open_store

    # The schema first (`driftd store upgrade`): a daemon that finds no checkpoints
    # table reconnects and replays, offering predictions twice (two tasks each).
    open_store(pg_schema_url).close()
    workers = WorkerProcesses(config, tmp_path)
    daemon = Daemon(load_settings(config))
    try:
        assert daemon.explainer is not None and daemon.explainer.wait_ready(30)
        assert daemon.explainer.worker_pids == []  # nothing explained in the daemon
        workers.start()
        daemon.start()
        _produce(kafka_bootstrap, topic, events)
        registry = daemon.registry
        published = lambda: registry.get_sample_value("driftd_explain_published_total", {"model": "credit"}) or 0  # noqa: E731
        assert _wait(lambda: published() == len(expected), 120), (published(), len(expected))
        # The first window closed before its explanations existed; the sums come later.
        assert _wait(attributed, 120), [(r.key, r.window_start, r.attribution) for r in daemon.pipeline.recent.values()]
        reports = list(daemon.pipeline.recent.values())
    finally:
        daemon.stop()
        workers.close()

    store = open_store(pg_schema_url)
    by_id = {}
    for window_start in (T0, T0 + 300):
        for record in store.explanations_for_window("credit", "v1", window_start, limit=10_000):
            assert record.prediction_id not in by_id, "explained twice"
            by_id[record.prediction_id] = record
    store.close()
    assert set(by_id) == expected
    for report in reports:
        mine = [r for r in by_id.values() if r.segment == report.key.segment
                and r.window_start.timestamp() == report.window_start]
        assert report.attribution.n_explanations == len(mine)
        assert report.attribution.ndcg > 0.9 and not report.attribution.drifted
