"""Helpers of the explain-worker tests: topics, configuration files, worker processes.

Every worker process a test starts goes through :class:`WorkerProcesses`, whose
``close`` (called in a ``finally`` or by the fixture) stops them all: SIGTERM, then
SIGKILL for any still alive after 20 s.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def write_config(directory: Path, *, bootstrap: str, topic: str, group: str, store_url: str,
                 models: dict[str, Path], extra: dict | None = None) -> Path:
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "explain_topic": topic, "explain_group_id": group,
                  "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 60_000,
                  "poll_timeout_ms": 200},
        "models": [{"name": name, "model_file": str(path)} for name, path in models.items()],
        "store": {"url": store_url},
        "explain": {"enabled": True, "mode": "kafka", "base_rate": 1.0, "max_per_second": 1e9,
                    "queue_size": 100_000, "near_threshold_band": 0.0},
        "http": {"port": 0},
    }
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    path = directory / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(condition: Callable[[], object], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class WorkerProcesses:
    """``driftd explain-worker`` processes started by a test (always stopped by ``close``)."""

    def __init__(self, config: Path, directory: Path) -> None:
        self.config = config
        self.directory = directory
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}

    def start(self) -> subprocess.Popen:
        log = self.directory / f"worker-{len(self.processes)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "explain-worker", "--config", str(self.config),
                 "--log-level", "debug"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env,
            )
        self.processes.append(process)
        self.logs[process.pid] = log
        return process

    def log(self, process: subprocess.Popen) -> str:
        return self.logs[process.pid].read_text(errors="replace")

    def consuming(self, process: subprocess.Popen) -> bool:
        return "consuming" in self.log(process)

    def assigned(self, process: subprocess.Popen) -> set[int] | None:
        """The partitions last assigned to the worker (None before its first assignment)."""
        found = re.findall(r"partitions assigned: ([\d,]*)", self.log(process))
        return None if not found else {int(p) for p in found[-1].split(",") if p}

    def share(self, processes: list[subprocess.Popen], partitions: int) -> bool:
        """Whether every worker holds some partitions and together they hold all, once."""
        held = [self.assigned(p) for p in processes]
        if any(not h for h in held):
            return False
        return sum(len(h) for h in held) == partitions and set().union(*held) == set(range(partitions))

    def events(self, process: subprocess.Popen, what: str) -> list[tuple[int, int]]:
        """(partition, offset) of the tasks ``what`` (started, stored, duplicate, committed) in the log."""
        patterns = {
            "started": r"task at (\d+):(\d+) started",
            "stored": r"task \w+ at (\d+):(\d+) stored",
            "duplicate": r"task \w+ at (\d+):(\d+) duplicate",
            "committed": r"task at (\d+):(\d+) committed",
        }
        return [(int(p), int(o)) for p, o in re.findall(patterns[what], self.log(process))]

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                except ProcessLookupError:
                    pass
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
