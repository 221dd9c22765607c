"""Soak: RSS stays flat while millions of events stream through the in-process pipeline.

    python bench/soak.py [--events 20000000] [--batch 5000]

Columnar batches (20 numeric features, 2 segments) with advancing event times go
through ``Pipeline.add_batch`` so windows keep opening and closing. RSS is read
from ``/proc/self/statm`` after every batch; the script prints RSS at 10 % and at
100 % of the run, their difference (target < 10 %) and the event rate. A small
pool of pre-built batches is reused in rotation (only the event times and offsets
change), so the generator itself allocates nothing as the run goes on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.batch import PredictionBatch
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline

N_NUMERIC = 20
T0 = 1_767_225_600.0
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (no psutil needed)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=2_000.0, help="simulated events per second of event time")
    args = parser.parse_args(argv)

    pipeline, layout = make_pipeline()
    rng = np.random.default_rng(1)
    pool = []
    for k in range(8):
        # Every third batch shifts the mean so drift statistics take both paths.
        numeric = rng.normal(loc=0.5 if k % 3 == 0 else 0.0, size=(args.batch, N_NUMERIC))
        scores = rng.random(args.batch)
        pool.append((numeric, scores, np.array(["1" if s > 0.7 else "0" for s in scores], dtype=object),
                     ["region=eu" if i % 2 else "region=us" for i in range(args.batch)],
                     [f"p{k}-{i}" for i in range(args.batch)]))
    step = np.arange(args.batch) / args.rate
    n_batches = max(1, args.events // args.batch)
    mark = max(1, n_batches // 10)
    rss_10 = None
    closed = 0
    began = time.perf_counter()
    for b in range(n_batches):
        numeric, scores, predictions, segments, ids = pool[b % len(pool)]
        batch = PredictionBatch(
            model="soak", version="v1", prediction_ids=ids, event_times=T0 + b * args.batch / args.rate + step,
            segments=list(segments), numeric_names=layout.numeric_names, numeric=numeric,
            categorical_names=layout.categorical_names, categorical=np.empty((args.batch, 0), dtype=object),
            predictions=predictions, scores=scores, offsets=pipeline.next_positions(args.batch),
        )
        pipeline.add_batch(batch, layout)
        closed += len(pipeline.close_due())
        if b + 1 == mark:
            rss_10 = rss_bytes()
            print(f"10 %: {(b + 1) * args.batch:,} events, RSS {rss_10 / 2**20:.1f} MiB", flush=True)
    elapsed = time.perf_counter() - began
    rss_100 = rss_bytes()
    events = n_batches * args.batch
    change = (rss_100 - rss_10) / rss_10
    print(f"100 %: {events:,} events, RSS {rss_100 / 2**20:.1f} MiB")
    print(f"RSS change 10 % -> 100 %: {change:+.2%} (target < 10 %)")
    print(f"windows closed: {closed:,}; open windows: {len(pipeline.windows.open)}; recent reports: {len(pipeline.recent)}")
    print(f"throughput: {events / elapsed:,.0f} events/s over {elapsed:.0f} s")


def make_pipeline():
    import pandas as pd

    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(N_NUMERIC)]
    reference = pd.DataFrame(rng.normal(size=(50_000, N_NUMERIC)), columns=names)
    reference["prediction"] = (rng.random(50_000) < 0.3).astype(int)
    reference["score"] = rng.random(50_000)
    settings = load_settings(None, models=[{"name": "soak"}], windows={"size_seconds": 300, "min_events": 100})
    baseline = build_baseline(reference, "soak", "v1", prediction="prediction", score="score")
    _, metrics, collector = create_metrics(100)
    registry = BaselineRegistry(settings)
    registry.add(baseline)
    pipeline = Pipeline(settings, metrics, collector, registry)
    return pipeline, pipeline.layout("soak", "v1")


if __name__ == "__main__":
    main()
