"""``driftd explain-worker`` processes on the real broker and PostgreSQL (explain.mode kafka).

The daemon's side (an :class:`ExplainService` in kafka mode, here in the test process)
publishes tasks of 100-200 rows to a 4-partition topic; ``driftd explain-worker``
processes consume it as one consumer group and write to a private PostgreSQL schema.

* Two workers share the work: each published prediction has exactly one row in the
  store, every task one ``explanation_tasks`` row, both workers wrote some, and
  attribution drift read back from the store counts every explanation.
* One of two workers is SIGKILLed in the middle of a task: every task it had
  committed was written by it before the commit, the task it held is redone by the
  other worker, and still every prediction has exactly one row.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy
from prometheus_client import CollectorRegistry
from tests.explainers.explain_models import FEATURES, RULE_1, inputs, make_batch, train_xgboost
from tests.explainers.kafka_workers import WorkerProcesses, create_topic, wait_for, write_config

from explainers import global_importances
from explainers.service import ExplainService
from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.metrics import PipelineMetrics
from monitor.results import WindowKey
from monitor.store import open_store

pytestmark = pytest.mark.integration
shap = pytest.importorskip("shap")
pytest.importorskip("xgboost")

WINDOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def slow_model(model_dir: Path) -> dict:
    # 300 trees of depth 6: a task of 200 rows takes a noticeable time, so a kill
    # lands in the middle of one.
    path = train_xgboost(model_dir / "slow", RULE_1, seed=0, trees=300, depth=6)
    reference = inputs(2000, 1)
    baseline = build_baseline(reference, "a", "v1", importances=global_importances(path, reference))
    return {"path": path, "baseline": baseline}


@pytest.fixture
def setup(slow_model: dict, kafka_bootstrap: str, topic_prefix: str, pg_schema_url: str, tmp_path: Path):
    topic = f"{topic_prefix}.explain"
    create_topic(kafka_bootstrap, topic, partitions=4)
    config = write_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, group=f"{topic_prefix}-workers",
                          store_url=pg_schema_url, models={"a": slow_model["path"]})
    settings = load_settings(config)
    store = open_store(pg_schema_url)  # the daemon owns the schema
    workers = WorkerProcesses(config, tmp_path)
    try:
        yield {"settings": settings, "store": store, "workers": workers, "url": pg_schema_url, **slow_model}
    finally:
        workers.close()
        store.close()


def _publisher(setup: dict, task_rows: int) -> tuple[ExplainService, CollectorRegistry]:
    settings = setup["settings"]
    registry = CollectorRegistry()
    service = ExplainService(settings.explain, {m.name: m for m in settings.models}, {"a": setup["baseline"]},
                             setup["store"], PipelineMetrics(registry), kafka=settings.kafka,
                             task_rows=task_rows, sums_interval=0.5)
    assert service.wait_ready(30), "the task producer did not connect"
    return service, registry


def _publish(service: ExplainService, registry: CollectorRegistry, batches: int, rows: int) -> list[str]:
    ids = []
    for i in range(batches):
        batch = make_batch(inputs(rows, 100 + i), "a", prefix=f"b{i}-")
        assert service.offer(batch, np.full(rows, WINDOW)) == rows
        ids += batch.prediction_ids
    assert service.flush(60)
    assert registry.get_sample_value("driftd_explain_published_total", {"model": "a"}) == len(ids)
    return ids


def _rows_per_prediction(url: str) -> dict[str, int]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            query = "select prediction_id, count(*) from explanations group by prediction_id"
            return dict(connection.execute(sqlalchemy.text(query)).all())
    finally:
        engine.dispose()


def _tasks(url: str) -> dict[str, tuple[str, int]]:
    """task id -> (worker, rows)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("select task_id, worker, rows from explanation_tasks")).all()
            return {task: (worker, n) for task, worker, n in rows}
    finally:
        engine.dispose()


def _task_id_at(bootstrap: str, topic: str, partition: int, offset: int) -> str:
    """The task id of the message at ``partition:offset`` (read with a plain consumer)."""
    from kafka import KafkaConsumer, TopicPartition

    from explainers.task_codec import decode_task

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for message in consumer:
            return decode_task(message.value).task_id
    finally:
        consumer.close()
    raise AssertionError(f"no message at {partition}:{offset}")


def test_two_workers_share_the_tasks_and_store_each_prediction_once(setup: dict) -> None:
    workers = setup["workers"]
    first, second = workers.start(), workers.start()
    assert wait_for(lambda: workers.share([first, second], 4), 120), workers.log(first) + workers.log(second)
    service, registry = _publisher(setup, task_rows=100)
    try:
        ids = _publish(service, registry, batches=30, rows=100)  # 30 tasks
        assert wait_for(lambda: len(_rows_per_prediction(setup["url"])) >= len(ids), 180)
        time.sleep(1.0)  # a duplicate written late would show now
        counts = _rows_per_prediction(setup["url"])
        assert set(counts) == set(ids)
        assert set(counts.values()) == {1}, "a prediction was explained twice"
        tasks = _tasks(setup["url"])
        assert len(tasks) == 30 and sum(n for _, n in tasks.values()) == len(ids)
        writers = {worker.rsplit(":", 1)[1] for worker, _ in tasks.values()}
        assert writers == {str(first.pid), str(second.pid)}, "one worker did all the work"
        # Attribution drift of the window, from the sums the workers stored: every
        # explanation counted once, same model as the baseline, so no drift.
        key = WindowKey("a", "v1", "")
        service.attribution(key, WINDOW)
        assert service.refresh_attributions()
        summary = service.attribution(key, WINDOW)
        assert summary is not None and summary.n_explanations == len(ids)
        assert summary.ndcg > 0.99 and not summary.drifted
        # The stored sums equal the mean |SHAP| over the stored explanations.
        stored = setup["store"].explanations_for_window("a", "v1", WINDOW, limit=len(ids))
        direct = np.abs(np.array([[r.shap_values[f] for f in FEATURES] for r in stored])).mean(axis=0)
        np.testing.assert_allclose([summary.mean_abs_shap[f] for f in FEATURES], direct, rtol=1e-9)
    finally:
        service.close()


def test_a_worker_killed_mid_task_loses_nothing_it_acknowledged(setup: dict, kafka_bootstrap: str) -> None:
    workers, url = setup["workers"], setup["url"]
    victim, survivor = workers.start(), workers.start()
    assert wait_for(lambda: workers.share([victim, survivor], 4), 120), workers.log(victim) + workers.log(survivor)
    service, registry = _publisher(setup, task_rows=200)
    try:
        ids = _publish(service, registry, batches=40, rows=200)  # 40 tasks
    finally:
        service.close()
    assert wait_for(lambda: len(workers.events(victim, "committed")) >= 2, 120), workers.log(victim)
    # Stop the victim (SIGSTOP) where it is; kill it once it is inside a task it has
    # not acknowledged (started, not committed).
    in_hand = None
    for _ in range(50):
        os.kill(victim.pid, signal.SIGSTOP)
        started, committed = workers.events(victim, "started"), workers.events(victim, "committed")
        if started and started[-1] not in committed:
            in_hand = started[-1]
            break
        os.kill(victim.pid, signal.SIGCONT)
        time.sleep(0.05)
    assert in_hand is not None, "never caught the worker inside a task"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    acknowledged = workers.events(victim, "committed")

    assert wait_for(lambda: len(_rows_per_prediction(url)) >= len(ids), 240), workers.log(survivor)
    counts = _rows_per_prediction(url)
    assert set(counts) == set(ids), "explanations were lost"
    assert set(counts.values()) == {1}, "a prediction was explained twice"
    tasks = _tasks(url)
    assert len(tasks) == 40 and sum(n for _, n in tasks.values()) == len(ids)
    # What the victim acknowledged it had written itself, before committing.
    topic = setup["settings"].kafka.explain_topic
    for partition, offset in acknowledged:
        worker, _ = tasks[_task_id_at(kafka_bootstrap, topic, partition, offset)]
        assert worker.endswith(f":{victim.pid}")
    # What it held unacknowledged was redone by the survivor (stored by it, or found
    # already stored when the victim's transaction had committed before the kill).
    assert wait_for(lambda: in_hand in workers.events(survivor, "committed"), 60), workers.log(survivor)
    worker, _ = tasks[_task_id_at(kafka_bootstrap, topic, *in_hand)]
    if worker.endswith(f":{survivor.pid}"):
        assert in_hand in workers.events(survivor, "stored")
    else:  # the victim's write committed just before the kill: found stored, not written again
        assert worker.endswith(f":{victim.pid}") and in_hand in workers.events(survivor, "duplicate")
