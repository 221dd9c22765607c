"""Crash-exact recovery: SIGKILL and SIGTERM at random points lose nothing, count nothing twice.

A driftd subprocess consumes a seeded stream of predictions and labels (up to three
windows late) from the real broker; it is killed with SIGKILL three times and stopped
with SIGTERM twice at random moments, each time restarted; after the last restart it
drains both topics and is stopped. Every stored window (events, feature verdicts,
labels, performance, calibration, CBPE estimates) and every sequential alarm must be
identical to an uninterrupted run on the same topics. A SIGTERM does not close the
open windows (``windows.close_on_shutdown`` false, the default): they continue
after the restart, so a rolling restart truncates nothing.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from tests.reliability.reliability_helpers import DriftdProcess, write_config
from sqlalchemy import create_engine, text

from monitor.simulate import Scenario, encode, label_events, prediction_events

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
            "w.n_labels, w.performance, w.calibration, w.estimated_performance, "
            "f.feature, f.method, f.score, f.p_value, f.drifted, f.counts "
            "from window_results w join feature_results f on f.window_id = w.id "
            "order by w.model, w.segment, w.window_start, f.feature"
        )).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]


def _parsed(row: tuple) -> list:
    return [orjson.loads(v) if isinstance(v, str) and v[:1] in "{[" else v for v in row]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def alarms(db: Path) -> list[tuple]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(text(
            "select model, version, segment, detector, event_time, stream_index, statistic from concept_alarms "
            "order by model, segment, detector, stream_index")).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]


def labels_in_store(db: Path) -> int:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        total = conn.execute(text("select coalesce(sum(n_labels), 0) from window_results")).scalar_one()
    engine.dispose()
    return int(total)


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


def run_until_drained(config: Path, log: Path, db: Path, stops: list[str], rng: random.Random, total: int) -> None:
    daemon = DriftdProcess(config, log)
    try:
        for how in stops:
            before = checkpoint_offsets(db)
            daemon.start()
            deadline = time.monotonic() + 60
            # Stop only once this life has made progress (a new checkpoint), at a random moment after.
            while checkpoint_offsets(db) == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.05, 0.8))
            if how == "kill":
                daemon.kill()
            else:
                assert daemon.terminate() == 0
        # The last life closes what is still open when it stops: the end of the stream.
        config.write_text(config.read_text().replace("close_on_shutdown: false", "close_on_shutdown: true"))
        daemon.start()
        deadline = time.monotonic() + 120
        while _checkpointed(db) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _checkpointed(db) == total
        assert daemon.terminate() == 0
    finally:
        daemon.stop()


def test_sigkill_and_sigterm_at_random_points_give_identical_windows_labels_and_alarms(
        tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
    n_labels = 0
    for scenario in SCENARIOS:
        events, truth = prediction_events(scenario, T0, N_EVENTS, 10.0, seed=scenario.seed)
        for value in encode(events):
            producer.send(f"{topic_prefix}.predictions", value, key=scenario.model.encode())
        # Labels up to three windows late, shuffled by their arrival.
        labels = label_events(events, truth, delay=60.0, jitter=840.0, seed=scenario.seed, coverage=0.8)
        n_labels += len(labels)
        for value in encode(labels):
            producer.send(f"{topic_prefix}.labels", value, key=b"labels")
    producer.flush()
    producer.close()

    results = {}
    for name, stops in (("clean", []), ("crashed", ["kill", "term", "kill", "term", "kill"])):
        directory = tmp_path / name
        directory.mkdir()
        db = directory / "store.db"
        # Small polls so that the stream takes long enough to be stopped in the middle of.
        config = write_config(directory, kafka_bootstrap, topic_prefix, SCENARIOS, f"sqlite:///{db}",
                              kafka={"max_poll_records": 200}, checkpoint={"interval_seconds": 0.2},
                              labels={"enabled": True, "settle_seconds": 600},
                              windows={"close_on_shutdown": False, "idle_timeout_seconds": 5})
        run_until_drained(config, directory / "driftd.log", db, stops, random.Random(7), 2 * N_EVENTS + n_labels)
        results[name] = (window_statistics(db), alarms(db))
        log = (directory / "driftd.log").read_text()[-3000:]
        assert events_in_store(db) == 2 * N_EVENTS, (name, log)
        assert labels_in_store(db) == n_labels, (name, log)

    windows, concept = results["clean"]
    assert len(windows) > 2 * 2 * 4 * 8  # models x segments x windows x features
    crashed = results["crashed"][0]
    assert len(crashed) == len(windows)
    for got, want in zip(crashed, windows, strict=True):
        # Label sums (log loss, Brier) continue from restored partial sums, so they may
        # differ in the last bits of a float: equal to 1e-12 relative, everything else exact.
        assert _same(_parsed(got), _parsed(want)), (got[:4], got, want)
    assert results["crashed"][1] == concept
    # The stops really happened mid-stream: restarts resumed from advancing checkpoints.
    restores = [line.split("at offsets", 1)[1] for line in (tmp_path / "crashed" / "driftd.log").read_text().splitlines() if "restored checkpoint" in line]
    assert len(set(restores)) >= 5, restores
