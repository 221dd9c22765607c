"""Explanation throughput and its cost to ingest, as ratios measured in this process.

    python bench/explain.py [--rows 4096] [--events 200000] [--broker-events 100000] [--skip-kafka] [--parts abcd]

(a) explanations/s through driftd's workers (sampling, queue, process pool,
    encoding, additivity check, and each worker writing its rows to a SQLite
    store, one transaction per task) vs calling ``shap.TreeExplainer`` directly
    on the same batches in this process (target: overhead <= 25 % with one worker).
    XGBoost, 200 trees of depth 6, 20 features, batches of 256 rows. Each worker is
    one core (its native thread pools capped at one thread); the direct call gets
    as many threads as there are workers. Workers run at the bench's own priority
    here (in the daemon they are niced to 19), so that both sides get the same CPU.
    Each side is the best of ``--repeats`` alternating runs.
(b) in-process ingest events/s (``Pipeline.add_batch`` on columnar batches of
    5,000 events, 20 numeric + 5 categorical features, LightGBM demo model) with
    SHAP off vs on at the default 1 % base rate and at a rate that saturates the
    pool (target: >= 90 %). The workers run at nice 19, as in the daemon.
(c) the same through the daemon's Kafka consumer on the embedded broker (decode,
    validate, windows, explain), SHAP off vs every row picked with the pool
    saturated (target: >= 90 %).
(d) explain.mode kafka: tasks/s of 1 vs 2 ``driftd explain-worker`` processes (one
    core each) consuming the same 4-partition task topic on the embedded broker and
    writing to one store (the model of (a)); timed from the first task published to
    the last task's row in the store, the workers started and assigned before.
    On this 2-core machine the ceiling of the ratio is 2, less what the broker,
    the store and the bench itself take.

(b) and (c) alternate SHAP-off and SHAP-on runs ``--repeats`` times (default 5) and
print the ratio of the best runs and the median of the per-pair ratios: on two
shared cores single runs of the same code wander by ±15 %.

Machine load moves absolute numbers; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explainers import global_importances  # noqa: E402
from explainers.demo_model import train_demo_model  # noqa: E402
from explainers.service import ExplainService  # noqa: E402
from monitor.baseline import build_baseline  # noqa: E402
from monitor.baselines import BaselineRegistry  # noqa: E402
from monitor.batch import PredictionBatch  # noqa: E402
from monitor.config import ExplainSettings, ModelSettings, load_settings  # noqa: E402
from monitor.metrics import create_metrics  # noqa: E402
from monitor.pipeline import Pipeline  # noqa: E402
from monitor.store import open_store  # noqa: E402

N_NUMERIC, N_CATEGORICAL = 20, 5
CATEGORIES = np.array(["a", "b", "c", "d", "e", "f", "g", "h"], dtype=object)
T0 = 1_767_225_600.0


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, N_NUMERIC)), columns=[f"x{i}" for i in range(N_NUMERIC)])
    for j in range(N_CATEGORICAL):
        data[f"c{j}"] = rng.choice(CATEGORIES, size=n)
    return data


def target(data: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logit = data[[f"x{i}" for i in range(N_NUMERIC)]].to_numpy() @ np.linspace(1.5, 0.1, N_NUMERIC)
    logit += (data["c0"] == "a") * 1.0
    return (rng.random(len(data)) < 1 / (1 + np.exp(-logit))).astype(int)


def batch_of(data: pd.DataFrame, model: str, first: int, numeric: list[str], categorical: list[str]) -> PredictionBatch:
    n = len(data)
    scores = np.random.default_rng(first).random(n)
    return PredictionBatch(
        model=model, version="v1", prediction_ids=[f"p{first + i}" for i in range(n)],
        event_times=T0 + (first + np.arange(n)) / 200.0, segments=[""] * n,
        numeric_names=numeric, numeric=data[numeric].to_numpy(dtype=np.float64),
        categorical_names=categorical, categorical=data[categorical].to_numpy(dtype=object),
        predictions=(scores > 0.5).astype(np.float64), scores=scores,
        offsets=np.arange(first, first + n, dtype=np.int64),
    )


def xgb_model(directory: Path) -> Path:
    """XGBoost, 200 trees of depth 6, on the 20 numeric inputs."""
    import xgboost

    path = directory / "xgb.json"
    if not path.exists():
        train = frame(20_000, 0)[[f"x{i}" for i in range(N_NUMERIC)]]
        model = xgboost.XGBClassifier(n_estimators=200, max_depth=6, n_jobs=1, random_state=0)
        model.fit(train, target(frame(20_000, 0), 1))
        model.get_booster().save_model(str(path))
    return path


def bench_workers(directory: Path, rows: int, repeats: int = 3) -> None:
    import shap
    import xgboost
    from threadpoolctl import threadpool_limits

    print(f"(a) explanations/s: driftd workers vs shap.TreeExplainer directly, {rows} rows")
    path = xgb_model(directory)
    data = frame(rows, 7)[[f"x{i}" for i in range(N_NUMERIC)]]
    size = 256
    batches = [batch_of(data.iloc[s:s + size], "xgb", s, list(data.columns), []) for s in range(0, rows, size)]

    explainer = shap.TreeExplainer(xgboost.Booster(model_file=str(path)))
    explainer(batches[0].numeric[:8])  # warm up, as driftd's workers do

    def direct(threads: int) -> float:
        # As many native threads as driftd gets worker processes (one core each).
        with threadpool_limits(threads):
            began = time.perf_counter()
            for batch in batches:
                explainer(batch.numeric, check_additivity=False)
            return rows / (time.perf_counter() - began)

    def through_workers(workers: int, run: int) -> float:
        store = open_store(f"sqlite:///{directory / f'workers{workers}-{run}.db'}")
        settings = ExplainSettings(enabled=True, workers=workers, queue_size=rows, base_rate=1.0, max_per_second=1e9)
        service = ExplainService(settings, {"xgb": ModelSettings(name="xgb", model_file=path)}, {}, store,
                                 create_metrics(10)[1], task_rows=size, worker_niceness=0)
        try:
            assert service.wait_ready(300), "workers did not start"
            began = time.perf_counter()
            for batch in batches:
                service.offer(batch, np.full(len(batch), T0))
            assert service.flush(600)
            return rows / (time.perf_counter() - began)
        finally:
            service.close()
            store.close()

    for workers in (1, 2):
        # Alternating runs, best of each: load that comes and goes hits both sides.
        runs = [(direct(workers), through_workers(workers, run)) for run in range(repeats)]
        best_direct, best_through = max(r[0] for r in runs), max(r[1] for r in runs)
        print(f"    shap direct, {workers} thread(s) {best_direct:6.0f} rows/s | driftd, {workers} worker(s) {best_through:8.0f} rows/s | "
              f"ratio {best_through / best_direct:.2f} (overhead {best_direct / best_through - 1:+.0%}, best of {repeats})")


def _pipeline(baseline, explainer=None, **sections) -> Pipeline:
    settings = load_settings(None, models=[{"name": "bench"}], windows={"size_seconds": 300, "min_events": 100},
                             **sections)
    _, metrics, collector = create_metrics(100)
    registry = BaselineRegistry(settings)
    registry.add(baseline)
    return Pipeline(settings, metrics, collector, registry, explainer=explainer)


def paired(off: Callable[[int], float], on: Callable[[int], float], repeats: int) -> tuple[float, float, float, float]:
    """Alternating off/on runs: (best off, best on, median of the per-pair on/off ratios,
    lowest pair ratio). Load that comes and goes hits both sides of a pair alike."""
    pairs = [(off(r), on(r)) for r in range(repeats)]
    ratios = [b / a for a, b in pairs]
    return max(a for a, _ in pairs), max(b for _, b in pairs), statistics.median(ratios), min(ratios)


def report(label: str, off: float, on: float, median: float, lowest: float, repeats: int, extra: str) -> None:
    print(f"    off {off:9.0f} ev/s | on, {label:19s} {on:9.0f} ev/s | ratio of bests {on / off:.2f}, "
          f"median pair {median:.2f} (lowest {lowest:.2f}; {repeats} pairs; {extra})")


def demo_model(path: Path):
    """The LightGBM demo model trained on 20k rows, and its baseline with importances."""
    train = frame(20_000, 0)
    train["target"] = target(train, 1)
    train_demo_model(train, "target", path)
    inputs = train.drop(columns=["target"])
    return build_baseline(inputs, "bench", "v1", importances=global_importances(path, inputs))


def explain_service(path: Path, baseline, store, base_rate: float, budget: float) -> tuple[ExplainService, object]:
    """One worker (nice 19, as in the daemon) explaining model "bench"; and its metrics."""
    _, metrics, _ = create_metrics(10)
    settings = ExplainSettings(enabled=True, workers=1, queue_size=1000, base_rate=base_rate, max_per_second=budget)
    service = ExplainService(settings, {"bench": ModelSettings(name="bench", model_file=path)},
                             {"bench": baseline}, store, metrics)
    assert service.wait_ready(300), "workers did not start"
    return service, metrics


def bench_ingest(directory: Path, events: int, repeats: int = 3) -> None:
    print(f"(b) in-process ingest, {events} events in batches of 5,000: SHAP off vs on")
    path = directory / "bench.txt"
    baseline = demo_model(path)
    numeric, categorical = baseline.numeric_names, baseline.categorical_names
    data = frame(events, 3)
    batches = [batch_of(data.iloc[s:s + 5000], "bench", s, numeric, categorical) for s in range(0, events, 5000)]

    def run(explainer=None) -> float:
        pipeline = _pipeline(baseline, explainer)
        began = time.perf_counter()
        for batch in batches:
            pipeline.add_batch(batch.take(np.arange(len(batch))))
        pipeline.close_all()
        return events / (time.perf_counter() - began)

    for label, base_rate, budget in (("1 % base rate", 0.01, 50.0), ("saturating (100 %)", 1.0, 1e9)):
        store = open_store(f"sqlite:///{directory / f'ingest{base_rate}.db'}")
        service, metrics = explain_service(path, baseline, store, base_rate, budget)
        result = paired(lambda r: run(), lambda r: run(service), repeats)
        service.close()  # finishes what was queued
        store.close()
        explained = metrics.registry.get_sample_value("driftd_explanations_total", {"model": "bench"}) or 0
        dropped = sum(s.value for f in metrics.registry.collect() if f.name == "driftd_explain_dropped"
                      for s in f.samples if s.name.endswith("_total"))
        report(label, *result, repeats, f"explained {explained:.0f}, dropped {dropped:.0f}")


def bench_broker(directory: Path, events: int, repeats: int = 3) -> None:
    """(c) the daemon's consumer reading the embedded broker, SHAP off vs saturated."""
    import orjson
    from kafka import KafkaProducer

    from monitor.broker import EmbeddedBroker
    from monitor.consumer import Consumer

    print(f"(c) embedded broker -> windows, {events} events: SHAP off vs saturating (every row picked)")
    path = directory / "broker.txt"
    baseline = demo_model(path)
    data = frame(events, 4)
    records = data.to_dict(orient="records")
    scores = np.random.default_rng(4).random(events)
    with EmbeddedBroker() as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=50, batch_size=1 << 20)
        for i, features in enumerate(records):
            producer.send("bench.predictions", orjson.dumps({
                "model": "bench", "model_version": "v1", "prediction_id": f"p{i}", "timestamp": T0 + i / 200.0,
                "features": features, "prediction": int(scores[i] > 0.5), "scores": {"1": float(scores[i])},
            }), key=b"bench")
        producer.flush()
        producer.close()

        def run(group: str, explainer=None) -> float:
            pipeline = _pipeline(
                baseline, explainer,
                kafka={"bootstrap_servers": broker.bootstrap_servers, "predictions_topic": "bench.predictions",
                       "group_id": group, "max_poll_records": 5000, "max_poll_interval_ms": 3000,
                       "session_timeout_ms": 6000, "heartbeat_interval_ms": 500},
                labels={"enabled": False}, checkpoint={"interval_seconds": 3600},
            )
            consumer = Consumer(pipeline.settings, pipeline, pipeline.metrics)
            consumer.restored = True
            consumer._connect()
            counter = pipeline.metrics.events.labels(model="bench", version="v1")
            began = None
            deadline = time.monotonic() + 300
            try:
                while counter._value.get() < events and time.monotonic() < deadline:
                    consumer._iteration()
                    if began is None and counter._value.get() > 0:
                        began = time.perf_counter()
            finally:
                consumer._disconnect()
            assert counter._value.get() == events, f"only {counter._value.get()} of {events} events ingested"
            return events / (time.perf_counter() - began)

        store = open_store(f"sqlite:///{directory / 'broker.db'}")
        service, metrics = explain_service(path, baseline, store, base_rate=1.0, budget=1e9)
        try:
            result = paired(lambda r: run(f"off-{r}"), lambda r: run(f"on-{r}", service), repeats)
        finally:
            service.close()
            store.close()
    explained = metrics.registry.get_sample_value("driftd_explanations_total", {"model": "bench"}) or 0
    dropped = metrics.registry.get_sample_value("driftd_explain_dropped_total", {"model": "bench", "reason": "queue_full"}) or 0
    report("saturating (100 %)", *result, repeats, f"explained {explained:.0f}, dropped {dropped:.0f}")


def bench_kafka_workers(directory: Path, rows: int, repeats: int = 3) -> None:
    """(d) tasks/s of 1 vs 2 explain-worker processes on one task topic."""
    import re
    import subprocess

    import yaml
    from kafka.admin import KafkaAdminClient, NewTopic

    from monitor.broker import EmbeddedBroker

    size = 256
    path = xgb_model(directory)
    data = frame(rows, 7)[[f"x{i}" for i in range(N_NUMERIC)]]
    batches = [batch_of(data.iloc[s:s + size], "xgb", s, list(data.columns), []) for s in range(0, rows, size)]
    print(f"(d) explain.mode kafka: {len(batches)} tasks of {size} rows, 1 vs 2 explain-worker processes")
    with EmbeddedBroker() as broker:
        def run(workers: int, run: int) -> float:
            name = f"tasks-{workers}-{run}"
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
            admin.create_topics([NewTopic(name, 4, 1)])
            admin.close()
            url = f"sqlite:///{directory / f'{name}.db'}"
            config = directory / f"{name}.yaml"
            config.write_text(yaml.safe_dump({
                "kafka": {"bootstrap_servers": broker.bootstrap_servers, "explain_topic": name,
                          "explain_group_id": name, "session_timeout_ms": 6000, "heartbeat_interval_ms": 500},
                "models": [{"name": "xgb", "model_file": str(path)}], "store": {"url": url},
                "explain": {"enabled": True, "mode": "kafka", "base_rate": 1.0, "max_per_second": 1e9,
                            "queue_size": rows}}))
            settings = load_settings(config)
            store = open_store(url)
            logs = [directory / f"{name}-{i}.log" for i in range(workers)]
            processes = [subprocess.Popen([sys.executable, "-m", "monitor.cli", "explain-worker", "--config", str(config)],
                                          stdout=open(log, "wb"), stderr=subprocess.STDOUT) for log in logs]
            service = ExplainService(settings.explain, {"xgb": settings.models[0]}, {}, store, create_metrics(10)[1],
                                     kafka=settings.kafka, task_rows=size)
            try:
                def assigned() -> int:
                    held = [re.findall(r"partitions assigned: ([\d,]*)", log.read_text()) for log in logs]
                    return sum(len(h[-1].split(",")) if h and h[-1] else 0 for h in held) if all(held) else 0
                deadline = time.monotonic() + 300
                while assigned() != 4 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert service.wait_ready(60)
                cpu = sum(_cpu_seconds(p.pid) for p in processes)
                began = time.perf_counter()
                for batch in batches:
                    service.offer(batch, np.full(len(batch), T0))
                assert service.flush(60)
                with store.engine.connect() as connection:
                    from sqlalchemy import text

                    while time.monotonic() < deadline:
                        done = connection.execute(text("select count(*) from explanation_tasks")).scalar()
                        connection.rollback()
                        if done == len(batches):
                            break
                        time.sleep(0.02)
                wall = time.perf_counter() - began
                cores[workers].append((sum(_cpu_seconds(p.pid) for p in processes) - cpu) / wall)
                return len(batches) / wall
            finally:
                service.close()
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(30)
                store.close()

        results, cores = {1: [], 2: []}, {1: [], 2: []}
        for r in range(repeats):  # alternating: load that comes and goes hits both
            for workers in (1, 2):
                results[workers].append(run(workers, r))
                print(f"      run {r}, {workers} worker(s): {results[workers][-1]:.2f} tasks/s, "
                      f"workers' CPU {cores[workers][-1]:.2f} cores", flush=True)
        one, two = max(results[1]), max(results[2])
        pairs = [b / a for a, b in zip(results[1], results[2])]
        per_core = {w: statistics.median(t / c for t, c in zip(results[w], cores[w]) if c > 0) for w in (1, 2)}
        print(f"    1 worker {one:6.2f} tasks/s ({one * size:6.0f} rows/s) | 2 workers {two:6.2f} tasks/s "
              f"({two * size:6.0f} rows/s) | ratio of bests {two / one:.2f}, median pair {statistics.median(pairs):.2f} "
              f"(best of {repeats}; 2 cores shared with the broker, the store and this process)")
        # Tasks per CPU-second of the workers: equal for 1 and 2 workers means capacity
        # grows with the cores the workers get; the tasks/s ratio says how many they got.
        print(f"    tasks per worker CPU-second: 1 worker {per_core[1]:.2f}, 2 workers {per_core[2]:.2f} "
              f"(ratio {per_core[2] / per_core[1]:.2f}); workers' CPU, median: "
              f"{statistics.median(cores[1]):.2f} vs {statistics.median(cores[2]):.2f} cores")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--broker-events", type=int, default=100_000)
    parser.add_argument("--skip-kafka", action="store_true", help="skip (c) and (d)")
    parser.add_argument("--parts", default="abcd", help="which of (a)-(d) to run, e.g. 'd'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if "a" in args.parts:
            bench_workers(Path(tmp), args.rows, args.repeats)
        if "b" in args.parts:
            bench_ingest(Path(tmp), args.events, args.repeats)
        if "c" in args.parts and not args.skip_kafka:
            bench_broker(Path(tmp), args.broker_events, args.repeats)
        if "d" in args.parts and not args.skip_kafka:
            bench_kafka_workers(Path(tmp), args.rows, args.repeats)


if __name__ == "__main__":
    main()
