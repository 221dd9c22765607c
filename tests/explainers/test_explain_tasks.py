"""explain.mode kafka, piece by piece: the task format, the idempotent write, the worker loop, the publisher.

* A task survives the trip through JSON (NaN, categories, class labels), and a
  message that is not a task is a clear :class:`TaskFormatError`.
* ``add_explanation_task`` writes a task once: the same task again writes nothing
  and does not add its |SHAP| sums twice; ``window_sums`` reads them back.
* A worker (in-process, real broker, SQLite) whose store cannot take a task keeps
  it uncommitted and retries it until the store can; a message that is not a task
  is counted (``bad_task``) and committed, and does not block the ones after it.
* With the broker unreachable, ``offer`` never waits: the bounded buffer fills,
  the rest is counted as ``queue_full``, and ``close`` counts the buffer as ``shutdown``.
* A configuration that cannot work is an error naming the key.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from tests.explainers.explain_models import RULE_1, inputs, make_batch, train_xgboost
from tests.explainers.kafka_workers import create_topic, wait_for

from explainers.task_codec import TaskFormatError, decode_task, encode_task
from monitor.batch import PredictionBatch
from monitor.config import ConfigError, load_settings
from monitor.metrics import PipelineMetrics
from monitor.store import open_store
from monitor.store.tasks import add_explanation_task, window_sums

WINDOW = 1_700_000_000.0


def _mixed_batch() -> PredictionBatch:
    categorical = np.array([["red", True], [None, False], ["blue", None]], dtype=object)
    return PredictionBatch(
        model="m", version="v2", prediction_ids=["a", "b", "c"], event_times=np.array([1.5, 2.5, 3.5]),
        segments=["", "region=eu", ""], numeric_names=["x", "y"],
        numeric=np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 4.0]]), categorical_names=["colour", "flag"],
        categorical=categorical, predictions=np.array(["yes", "no", "yes"], dtype=object),
        scores=np.array([0.9, np.nan, 0.7]),
    )


def test_a_task_round_trips_through_its_json_message() -> None:
    batch = _mixed_batch()
    value = encode_task("t-1", "m", 1_767_225_600_123_456, [(batch, np.array([0.0, 0.0, 300.0]), np.array([1, 4, 3]))])
    task = decode_task(value)
    assert task.task_id == "t-1" and task.model == "m" and task.rows == 3
    assert task.created_at == datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    (got, starts, reasons), = task.chunks
    np.testing.assert_array_equal(got.numeric, batch.numeric)  # NaN where missing
    assert got.categorical.tolist() == batch.categorical.tolist()
    assert got.predictions.tolist() == ["yes", "no", "yes"] and got.predictions.dtype == object
    np.testing.assert_array_equal(got.scores, batch.scores)
    assert got.segments == batch.segments and got.version == "v2" and got.prediction_ids == ["a", "b", "c"]
    assert starts.tolist() == [0.0, 0.0, 300.0] and reasons.tolist() == [1, 4, 3]
    assert got.feature_row(1) == batch.feature_row(1)


@pytest.mark.parametrize("value, message", [
    (b"not json", "malformed task"),
    (b'{"v": 2, "task_id": "t"}', "not a task of format 1"),
    (b'{"v": 1, "model": "m", "created_at_us": 1, "chunks": []}', "KeyError"),
    (None, "empty message"),
])
def test_a_message_that_is_not_a_task_is_a_clear_error(value: bytes | None, message: str) -> None:
    with pytest.raises(TaskFormatError, match=message):
        decode_task(value)


def test_a_task_with_columns_of_unequal_length_is_refused() -> None:
    batch = _mixed_batch()
    value = encode_task("t", "m", 1, [(batch, np.array([0.0, 0.0]), np.array([1, 1, 1]))])
    with pytest.raises(TaskFormatError, match="unequal length"):
        decode_task(value)


def _row(prediction_id: str, window_start: float = WINDOW) -> dict:
    return {"prediction_id": prediction_id, "model": "a", "version": "v1", "segment": "", "event_time": window_start,
            "window_start": window_start, "features": {"x1": 1.0}, "prediction": 0.0, "base_value": 0.1,
            "shap_values": {"x1": 0.5, "x2": -0.25}, "explainer": "tree/log_odds", "duration_ms": 1.0}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'driftd.db'}"
    return request.getfixturevalue("pg_schema_url")


def test_a_task_is_written_once_with_its_sums(store_url: str) -> None:
    store = open_store(store_url)
    try:
        created = datetime(2026, 1, 1, tzinfo=UTC)
        window = ("a", "v1", "", WINDOW)
        sums = [(window, ["x1", "x2"], np.array([1.0, 0.5]), 2)]
        rows = [_row("p1"), _row("p2")]
        assert add_explanation_task(store, "t1", "a", "host:1", created, rows, sums) == 2
        # Redelivered (to this or another worker): nothing is written again.
        assert add_explanation_task(store, "t1", "a", "host:2", created, rows, sums) == 0
        assert add_explanation_task(store, "t2", "a", "host:2", created, [_row("p3")],
                                    [(window, ["x1", "x2"], np.array([3.0, 1.0]), 1)]) == 1
        found = window_sums(store, [window, ("a", "v1", "", WINDOW + 300)])
        names, totals, count = found[window]
        assert names == ["x1", "x2"] and totals.tolist() == [4.0, 1.5] and count == 3
        assert set(found) == {window}
        stored = store.explanations_for_window("a", "v1", WINDOW, limit=10)
        assert sorted(r.prediction_id for r in stored) == ["p1", "p2", "p3"]
        assert {r.created_at for r in stored} == {created}
    finally:
        store.close()


def test_retention_deletes_old_tasks_and_sums(tmp_path: Path) -> None:
    from monitor.store.tasks import apply_task_retention

    store = open_store(f"sqlite:///{tmp_path / 'driftd.db'}")
    try:
        old, new = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
        for task, created in (("old", old), ("new", new)):
            start = created.timestamp()
            add_explanation_task(store, task, "a", "h:1", created, [_row(task, start)],
                                 [(("a", "v1", "", start), ["x1"], np.array([1.0]), 1)])
        deleted = apply_task_retention(store, datetime(2026, 3, 2, tzinfo=UTC), days=30)
        assert deleted == {"explanation_tasks": 1, "attribution_sums": 1}
        assert set(window_sums(store, [("a", "v1", "", old.timestamp()), ("a", "v1", "", new.timestamp())])) == {
            ("a", "v1", "", new.timestamp())}
    finally:
        store.close()


@pytest.fixture(scope="module")
def fast_model(model_dir: Path) -> Path:
    return train_xgboost(model_dir / "fast", RULE_1, seed=3)


def _worker_settings(kafka_bootstrap: str, topic: str, group: str, store_url: str, model: Path):
    return load_settings(
        None,
        kafka={"bootstrap_servers": kafka_bootstrap, "explain_topic": topic, "explain_group_id": group,
               "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "poll_timeout_ms": 100},
        models=[{"name": "a", "model_file": str(model)}], store={"url": store_url},
        explain={"enabled": True, "mode": "kafka"},
    )


@pytest.mark.integration
def test_the_worker_retries_a_task_the_store_cannot_take_and_skips_what_is_not_a_task(
    fast_model: Path, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
) -> None:
    pytest.importorskip("shap")
    from explainers.kafka_worker import TaskWorker

    topic = f"{topic_prefix}.explain"
    create_topic(kafka_bootstrap, topic, partitions=1)
    url = f"sqlite:///{tmp_path / 'driftd.db'}"
    settings = _worker_settings(kafka_bootstrap, topic, f"{topic_prefix}-g", url, fast_model)
    batch = make_batch(inputs(20, 4), "a", prefix="r-", event_time=WINDOW)
    task = encode_task("t-retry", "a", 1, [(batch, np.full(20, WINDOW), np.ones(20, dtype=np.int8))])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for value in (b"garbage", task):  # one partition: the bad message comes first
        producer.send(topic, value)
    producer.flush()
    producer.close()
    store = open_store(url, create=False)  # no tables yet: every write fails
    registry = CollectorRegistry()
    worker = TaskWorker(settings, store, PipelineMetrics(registry))
    assert worker.load() == ["a"]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        failures = lambda: registry.get_sample_value("driftd_store_errors_total", {"operation": "add_explanation_task"}) or 0  # noqa: E731
        assert wait_for(lambda: failures() >= 2, 60), "the worker did not retry the task"
        assert registry.get_sample_value("driftd_explain_dropped_total", {"model": "", "reason": "bad_task"}) == 1
        assert worker.tasks_done == 1  # the bad message, committed; the task is not
        store.migrate()  # the store comes back
        assert wait_for(lambda: worker.tasks_done == 2, 60)
        assert registry.get_sample_value("driftd_explanations_total", {"model": "a"}) == 20
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive()
    stored = store.explanations_for_window("a", "v1", WINDOW, limit=100)
    assert sorted(r.prediction_id for r in stored) == sorted(batch.prediction_ids)
    store.close()


def test_offer_never_waits_when_the_broker_is_unreachable(fast_model: Path, tmp_path: Path) -> None:
    from explainers.service import ExplainService

    # Nothing listens on port 9: the producer never connects.
    settings = _worker_settings("127.0.0.1:9", "tasks", "g", f"sqlite:///{tmp_path / 'd.db'}", fast_model)
    settings = settings.model_copy(update={"explain": settings.explain.model_copy(
        update={"base_rate": 1.0, "queue_size": 300, "max_per_second": 1e9})})
    registry = CollectorRegistry()
    store = open_store(settings.store.url)
    service = ExplainService(settings.explain, {"a": settings.models[0]}, {}, store, PipelineMetrics(registry),
                             kafka=settings.kafka)
    try:
        durations = []
        for i in range(10):
            batch = make_batch(inputs(100, i), "a", prefix=f"u{i}-")
            started = time.perf_counter()
            service.offer(batch, np.full(100, WINDOW))
            durations.append(time.perf_counter() - started)
        assert max(durations) < 0.5, durations
        value = lambda reason: registry.get_sample_value("driftd_explain_dropped_total", {"model": "a", "reason": reason}) or 0  # noqa: E731
        assert value("queue_full") == 700 and registry.get_sample_value("driftd_explain_queue_depth") == 300
        assert not service.flush(0.5)
    finally:
        service.close(timeout=1.0)
        store.close()
    assert value("shutdown") == 300 and registry.get_sample_value("driftd_explain_queue_depth") == 0


def test_kafka_mode_needs_a_store_the_workers_can_open() -> None:
    with pytest.raises(ConfigError, match="store.url 'sqlite://'.*explain.mode 'kafka'"):
        load_settings(None, store={"url": "sqlite://"}, explain={"enabled": True, "mode": "kafka"})
    with pytest.raises(ConfigError, match="explain.mode.*'pool' or 'kafka'"):
        load_settings(None, explain={"mode": "celery"})
