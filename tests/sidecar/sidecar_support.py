"""Helpers for the sidecar tests: seeded events, reading a topic back, a server in a thread."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from kafka import KafkaConsumer

from monitor.broker import free_port
from monitor.sidecar import PredictionLogger
from monitor.sidecar.server import SidecarApp, SidecarServer


def prediction_event(index: int, model: str = "churn", seed: int = 7) -> dict[str, Any]:
    """A valid prediction event; values depend only on (index, seed)."""
    rng = random.Random(seed * 1_000_003 + index)
    score = round(rng.random(), 6)
    return {
        "model": model,
        "model_version": "3",
        "prediction_id": f"{model}-{index}",
        "timestamp": 1_767_225_600 + index * 0.25,
        "features": {
            "tenure": rng.randint(0, 72),
            "charges": round(rng.uniform(10, 120), 4),
            "plan": rng.choice(["basic", "pro", "team"]),
            "autopay": rng.random() < 0.5,
            "referrer": None if rng.random() < 0.2 else "ads",
        },
        "prediction": int(score > 0.5),
        "scores": {"0": round(1 - score, 6), "1": score},
        "segment": {"region": rng.choice(["eu", "us"])},
        "variant": "champion",
        "latency_ms": round(rng.uniform(0.5, 9), 3),
    }


def label_event(index: int, model: str = "churn") -> dict[str, Any]:
    return {"prediction_id": f"{model}-{index}", "label": index % 2,
            "timestamp": 1_767_225_900 + index * 0.25, "model": model}


def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 30.0, settle: float = 0.5, **options: Any
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every record of ``topic`` as (key, decoded value): waits for ``expected`` of them,
    then ``settle`` seconds more so that extra (duplicate) records are seen too."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap.split(","), group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, **options,
    )
    records: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            if settle_until is None and len(records) >= expected:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend((message.key, orjson.loads(message.value)) for message in batch)
    finally:
        consumer.close()
    return records


@contextmanager
def running_sidecar(logger: PredictionLogger, **app_options: Any) -> Iterator[str]:
    """``driftd sidecar``'s server for ``logger`` in a thread; yields its base URL."""
    port = free_port()
    server = SidecarServer(SidecarApp(logger, **app_options), host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, name="sidecar-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sidecar server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
