"""Sidecar benchmark: what logging a prediction costs the serving process, and HTTP throughput.

Runs against an embedded broker (or ``--bootstrap``):

1. ``PredictionLogger.log_prediction`` per-call cost (median, p99, p99.9 in µs) while
   its delivery thread is sending to Kafka, interleaved call by call with a bare
   ``orjson.dumps`` of the same event (the floor: any logger must at least encode).
   Target: p99 <= 50 µs.
2. The HTTP sidecar (``driftd sidecar`` in its own process) on loopback: events/s
   accepted and delivered to Kafka, batched (``--batch`` events per POST) and one
   event per POST, against a bare ``KafkaProducer`` sending the same encoded events
   from this process. Target: >= 20k events/s batched.

    python bench/sidecar.py [--events 50000] [--batch 200] [--clients 2]

Not run by the test suite. Numbers depend on the load of the machine: the script
prints the 1-minute load average next to them.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.broker import EmbeddedBroker, free_port
from monitor.sidecar import PredictionLogger


def make_events(n: int, seed: int = 1) -> list[dict]:
    """Events shaped like the design's reference log: 15 numeric and 5 categorical features."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        features: dict[str, object] = {f"num_{j}": rng.gauss(0, 1) for j in range(15)}
        features.update({f"cat_{j}": rng.choice(["a", "b", "c", "d"]) for j in range(5)})
        p = rng.random()
        events.append({
            "model": "bench", "model_version": "1", "prediction_id": f"bench-{seed}-{i}",
            "timestamp": 1_767_225_600 + i * 0.01, "features": features, "prediction": int(p > 0.5),
            "scores": {"0": 1 - p, "1": p}, "segment": {"region": rng.choice(["eu", "us"])},
        })
    return events


def percentiles(nanoseconds: list[int]) -> tuple[float, float, float]:
    ordered = sorted(nanoseconds)
    n = len(ordered)
    return ordered[n // 2] / 1000, ordered[int(n * 0.99)] / 1000, ordered[int(n * 0.999)] / 1000


def bench_client(bootstrap: str, events: list[dict], working_set: int = 256, block: int = 500) -> None:
    """Alternate blocks of bare ``orjson.dumps`` and of ``log_prediction`` over the same
    hot events; the dumps results are kept, as the logger keeps its encoded events, so
    that both pay the same allocator costs."""
    logger = PredictionLogger(bootstrap_servers=bootstrap, predictions_topic="bench.client",
                              buffer_events=len(events) * 2)
    hot = events[:working_set]
    dumps_ns, log_ns, kept = [], [], []
    clock = time.perf_counter_ns
    for start in range(0, len(events), block):
        batch = [hot[i % working_set] for i in range(start, min(start + block, len(events)))]
        for event in batch:
            started = clock()
            kept.append(orjson.dumps(event))
            dumps_ns.append(clock() - started)
        for event in batch:
            started = clock()
            logger.log_prediction(**event)
            log_ns.append(clock() - started)
    delivered = logger.flush(timeout=120)
    stats = logger.stats()
    logger.close()
    d50, d99, d999 = percentiles(dumps_ns)
    l50, l99, l999 = percentiles(log_ns)
    print(f"\nlog_prediction, {len(events)} calls while the delivery thread sends (20 features):")
    print(f"  orjson.dumps     median {d50:6.1f} µs   p99 {d99:6.1f} µs   p99.9 {d999:8.1f} µs")
    print(f"  log_prediction   median {l50:6.1f} µs   p99 {l99:6.1f} µs   p99.9 {l999:8.1f} µs")
    print(f"  ratio            median {l50 / d50:6.1f} x    p99 {l99 / d99:6.1f} x")
    print(f"  target p99 <= 50 µs: {'met' if l99 <= 50 else 'MISSED'}; delivered all: {delivered} "
          f"(sent {stats.sent}, dropped {stats.dropped})")


def bench_producer(bootstrap: str, values: list[bytes]) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="lz4", linger_ms=5,
                             batch_size=256 * 1024, enable_idempotence=False, acks="all")
    started = time.perf_counter()
    for value in values:
        producer.send("bench.producer", value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(values) / elapsed


def _post_worker(port: int, bodies: list[bytes], barrier: multiprocessing.Barrier) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    barrier.wait()
    for body in bodies:
        while True:
            connection.request("POST", "/v1/predictions", body, {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 202:
                break
            if response.status in (429, 503):
                time.sleep(float(response.getheader("retry-after", "1")) / 10)
                continue
            raise RuntimeError(f"sidecar answered {response.status}")
    connection.close()


def _sent(port: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    for line in text.splitlines():
        if line.startswith("driftd_sidecar_events_sent_total "):
            return float(line.split()[1])
    return 0.0


def bench_http(port: int, events: list[dict], batch: int, clients: int) -> tuple[float, float]:
    """(accepted events/s, delivered events/s) for POSTs of ``batch`` events from ``clients`` processes."""
    if batch == 1:
        bodies = [orjson.dumps(event) for event in events]
    else:
        bodies = [orjson.dumps(events[i:i + batch]) for i in range(0, len(events), batch)]
    before = _sent(port)
    barrier = multiprocessing.Barrier(clients + 1)
    workers = [multiprocessing.Process(target=_post_worker, args=(port, bodies[k::clients], barrier))
               for k in range(clients)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    accepted_in = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while _sent(port) - before < len(events) and time.monotonic() < deadline:
        time.sleep(0.02)
    delivered_in = time.perf_counter() - started
    return len(events) / accepted_in, len(events) / delivered_in


def start_sidecar(bootstrap: str, port: int) -> subprocess.Popen:
    command = [sys.executable, "-c", "import typer; from monitor.sidecar.cli import sidecar; typer.run(sidecar)",
               "--port", str(port), "--bootstrap-servers", bootstrap, "--buffer-events", "500000",
               "--log-level", "warning"]
    env = {**os.environ, "DRIFTD_KAFKA__PREDICTIONS_TOPIC": "bench.http"}
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sidecar did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--bootstrap", help="an existing Kafka instead of the embedded broker")
    args = parser.parse_args()

    broker = None if args.bootstrap else EmbeddedBroker().start()
    bootstrap = args.bootstrap or broker.bootstrap_servers
    try:
        print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        events = make_events(args.events)
        bench_client(bootstrap, events)

        raw_rate = bench_producer(bootstrap, [orjson.dumps(e) for e in events])
        port = free_port()
        sidecar = start_sidecar(bootstrap, port)
        try:
            bench_http(port, make_events(2000, seed=9), args.batch, 1)  # warm-up
            accepted, delivered = bench_http(port, make_events(args.events, seed=2), args.batch, args.clients)
            single_events = make_events(max(2000, args.events // 10), seed=3)
            single_accepted, single_delivered = bench_http(port, single_events, 1, args.clients)
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=30)
        print(f"\nHTTP sidecar on loopback ({args.clients} client processes, lz4 to Kafka):")
        print(f"  bare KafkaProducer (baseline)   {raw_rate:9,.0f} events/s delivered")
        print(f"  batched ({args.batch}/POST)           {accepted:9,.0f} events/s accepted, "
              f"{delivered:9,.0f} delivered  ({delivered / raw_rate:.2f} x baseline)")
        print(f"  single (1/POST)                 {single_accepted:9,.0f} events/s accepted, "
              f"{single_delivered:9,.0f} delivered  ({single_delivered / raw_rate:.2f} x baseline)")
        print(f"  target >= 20k events/s batched: {'met' if delivered >= 20_000 else 'MISSED'}")
        print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
