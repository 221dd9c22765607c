"""Crash-exact recovery: SIGKILL at random points never loses nor double-counts an event.

A driftd subprocess consumes a seeded stream from the real broker; it is killed with
SIGKILL at random moments (at least five times) and restarted; after the last
restart it drains the topic and is stopped with SIGTERM. Its stored per-window
statistics must be identical to those of an uninterrupted run on the same topic.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from tests.reliability.reliability_helpers import DriftdProcess, write_config
from sqlalchemy import create_engine, text

from monitor.simulate import Scenario, encode, prediction_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_767_225_600.0
SCENARIOS = [
    Scenario(model="credit", version="v1", drift_features=("num_0",), drift_start=T0 + 900, seed=31),
    Scenario(model="fraud", version="v2", drift_features=("num_1",), drift_start=T0 + 1200, seed=32),
]
N_EVENTS = 12_000  # per model, 1,200 s of event time


def window_statistics(db: Path) -> list[tuple]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(text(
            "select w.model, w.version, w.segment, w.window_start, w.n_events, w.drift_share, "
            "f.feature, f.method, f.score, f.p_value, f.drifted, f.counts "
            "from window_results w join feature_results f on f.window_id = w.id "
            "order by w.model, w.segment, w.window_start, f.feature"
        )).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]


def events_in_store(db: Path) -> int:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        total = conn.execute(text("select coalesce(sum(n_events), 0) from window_results")).scalar_one()
    engine.dispose()
    return int(total)


def checkpoint_offsets(db: Path) -> str | None:
    if not db.exists():
        return None
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            row = conn.execute(text("select offsets from checkpoints")).fetchone()
    except Exception:  # noqa: BLE001 - table not created yet
        row = None
    finally:
        engine.dispose()
    return None if row is None else str(row[0])


def _checkpointed(db: Path) -> int:
    """Messages the checkpoint has consumed (the topic is new: offsets start at 0, one per message)."""
    return sum(orjson.loads(checkpoint_offsets(db) or "{}").values())


def run_until_drained(config: Path, log: Path, db: Path, kills: int, rng: random.Random) -> None:
    daemon = DriftdProcess(config, log)
    try:
        for _ in range(kills):
            before = checkpoint_offsets(db)
            daemon.start()
            deadline = time.monotonic() + 60
            # Kill only once this life has made progress (a new checkpoint), at a random moment after.
            while checkpoint_offsets(db) == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.05, 0.8))
            daemon.kill()
        daemon.start()
        # Drained: the checkpoint has consumed every message. SIGTERM then closes the
        # windows the watermark has not (the last of each model) and stores them.
        deadline = time.monotonic() + 120
        while _checkpointed(db) < 2 * N_EVENTS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _checkpointed(db) == 2 * N_EVENTS
        assert daemon.terminate() == 0
    finally:
        daemon.stop()


def test_sigkill_at_random_points_gives_identical_windows(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
    for scenario in SCENARIOS:
        events, _ = prediction_events(scenario, T0, N_EVENTS, 10.0, seed=scenario.seed)
        for value in encode(events):
            producer.send(f"{topic_prefix}.predictions", value, key=scenario.model.encode())
    producer.flush()
    producer.close()

    results = {}
    for name, kills in (("clean", 0), ("crashed", 5)):
        directory = tmp_path / name
        directory.mkdir()
        db = directory / "store.db"
        # Small polls so that the stream takes long enough to be killed in the middle of.
        config = write_config(directory, kafka_bootstrap, topic_prefix, SCENARIOS, f"sqlite:///{db}", kafka={"max_poll_records": 100}, checkpoint={"interval_seconds": 0.2})
        run_until_drained(config, directory / "driftd.log", db, kills, random.Random(7))
        results[name] = window_statistics(db)
        assert events_in_store(db) == 2 * N_EVENTS, (name, (directory / "driftd.log").read_text()[-3000:])

    assert len(results["clean"]) > 2 * 2 * 4 * 8  # models x segments x windows x features
    assert results["crashed"] == results["clean"]
    # The kills really happened mid-stream: restarts resumed from advancing checkpoints.
    restores = [line.split("at offsets", 1)[1] for line in (tmp_path / "crashed" / "driftd.log").read_text().splitlines() if "restored checkpoint" in line]
    assert len(set(restores)) >= 5, restores
