"""A retrain request is emitted exactly once per cooldown, across a SIGKILL and a restart.

``driftd run`` (a subprocess) consumes a stream from the real broker whose inputs
drift from its second window on. Once the request is stored and published, the
daemon is killed with SIGKILL before it ever checkpointed, so the restarted daemon
replays the whole stream, sees the same drifting windows again and decides again;
the request row in the store holds the model's cooldown, so nothing is sent twice.
The one event on the topic carries every field of ``schemas/retrain_request.v1.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from monitor.cli import app
from monitor.simulate import Scenario, encode, prediction_events
from tests.reliability.reliability_helpers import DriftdProcess, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "retrain_request.v1.json").read_text(encoding="utf-8"))
T0 = 1_767_225_600.0
SCENARIO = Scenario(model="credit", version="v1", drift_features=("num_0", "num_1", "num_2", "num_3"), drift_start=T0 + 300, seed=41)
N_EVENTS = 15_000  # 1,500 s at 10/s: windows 2-4 drift and close behind the watermark


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_schema_url")


def stored_requests(url: str) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select * from retrain_requests order by id")).mappings().all()
    except Exception:  # noqa: BLE001 - table not created yet
        rows = []
    finally:
        engine.dispose()
    return [dict(r) for r in rows]


def checkpointed(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("select offsets from checkpoints")).fetchone()
    except Exception:  # noqa: BLE001
        row = None
    finally:
        engine.dispose()
    if row is None:
        return 0
    offsets = row[0] if isinstance(row[0], dict) else orjson.loads(row[0])
    return sum(offsets.values())


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {timeout} s; log:\n{log.read_text(errors='replace')[-4000:]}")


def topic_messages(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=5000)
    try:
        messages = list(consumer)
    finally:
        consumer.close()
    return messages


def test_one_request_per_cooldown_survives_sigkill_and_restart(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, store_url: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
    events, _ = prediction_events(SCENARIO, T0, N_EVENTS, 10.0, seed=SCENARIO.seed)
    for value in encode(events):
        producer.send(f"{topic_prefix}.predictions", value, key=b"credit")
    producer.flush()
    producer.close()

    db = store_url
    topic = f"{topic_prefix}.retrain"
    config = write_config(
        tmp_path, kafka_bootstrap, topic_prefix, [SCENARIO], store_url,
        # No checkpoint before the kill: the restart replays every window.
        checkpoint={"interval_seconds": 3600},
        retrain={"enabled": True, "consecutive_windows": 3, "cooldown_seconds": 86_400, "topic": topic,
                 "republish_after_seconds": 2.0, "performance_trigger": False},
        app={"url": "http://driftd-app.example:8501"},
    )
    log = tmp_path / "driftd.log"
    daemon = DriftdProcess(config, log)
    try:
        daemon.start()
        wait_for(lambda: any(r["published_at"] for r in stored_requests(db)), 180, "a published retrain request", log)
        daemon.kill()
        assert checkpointed(db) == 0, "the daemon checkpointed before the kill: the replay would not re-decide"
        first_life = log.read_text(errors="replace")
        assert first_life.count("retrain requested for credit") == 1

        daemon.start()
        wait_for(lambda: "held by the cooldown" in log.read_text(errors="replace")[len(first_life):], 180,
                 "the restarted daemon deciding again (and the cooldown holding it)", log)
        time.sleep(3)  # longer than republish_after_seconds: a second publish would have happened by now
        assert daemon.terminate() == 0
    finally:
        daemon.stop()

    assert log.read_text(errors="replace").count("retrain requested for credit") == 1
    messages = topic_messages(kafka_bootstrap, topic)
    assert len(messages) == 1, [m.value[:200] for m in messages]
    message = messages[0]
    assert message.key == b"credit"
    event = orjson.loads(message.value)

    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(event)
    assert set(event) == set(SCHEMA["required"]) == set(SCHEMA["properties"])
    assert event["model"] == "credit" and event["version"] == "v1" and event["reason"] == "drift_persisted"
    assert len(event["windows"]) == 3 and all(w["model_drifted"] for w in event["windows"])
    starts = [w["start"] for w in event["windows"]]
    assert starts == sorted(starts) and starts[0] >= "2026-01-01T00:05:00Z"
    flagged = {f["feature"] for f in event["drifted_features"]}
    assert {"num_0", "num_1", "num_2", "num_3"} <= flagged, flagged
    assert all(f["score"] is not None and f["method"] for f in event["drifted_features"])
    assert event["label_coverage"] == 0.0  # labels are off in this test
    assert event["attribution_change"] is None and event["performance"] is None
    assert event["app_link"].startswith("http://driftd-app.example:8501/?page=model&model=credit&version=v1")
    assert event["cooldown_seconds"] == 86_400

    rows = stored_requests(db)
    assert len(rows) == 1
    row = rows[0]
    assert row["request_id"] == event["request_id"] and row["status"] == "requested" and row["published_at"]
    assert (row["payload"] if isinstance(row["payload"], dict) else orjson.loads(row["payload"])) == event

    runner = CliRunner()
    listed = runner.invoke(app, ["retrain", "list", "--url", store_url])
    assert listed.exit_code == 0 and "credit" in listed.output and "drift_persisted" in listed.output
    acked = runner.invoke(app, ["retrain", "ack", event["request_id"], "--note", "job 17 started", "--url", store_url])
    assert acked.exit_code == 0, acked.output
    assert stored_requests(db)[0]["status"] == "acknowledged" and stored_requests(db)[0]["note"] == "job 17 started"
