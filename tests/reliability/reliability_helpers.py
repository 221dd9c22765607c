"""Running ``driftd run`` as a real subprocess against the broker, for crash and outage tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from monitor.baseline import build_baseline
from monitor.simulate import Scenario, training_frame

ROOT = Path(__file__).resolve().parents[2]


def write_config(directory: Path, bootstrap: str, prefix: str, scenarios: list[Scenario], store_url: str, **extra: object) -> Path:
    for scenario in scenarios:
        frame = training_frame(scenario, n=10_000)
        baseline = build_baseline(frame, scenario.model, scenario.version, target="target", prediction="prediction", score="score")
        path = directory / "baselines" / scenario.model / f"{scenario.version}.json"
        if not path.exists():
            baseline.save(path)
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap, "group_id": f"{prefix}-{directory.name}",
            "predictions_topic": f"{prefix}.predictions", "labels_topic": f"{prefix}.labels",
            "dead_letter_topic": f"{prefix}.dlq", "max_poll_interval_ms": 3000, "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500, "max_poll_records": 500,
        },
        "models": [{"name": s.model} for s in scenarios],
        "baseline_dir": str(directory / "baselines"),
        "store": {"url": store_url},
        "http": {"port": 0},
        "windows": {"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 100},
        "checkpoint": {"interval_seconds": 0.5},
        "labels": {"enabled": False},
    }
    for section, values in extra.items():
        config.setdefault(section, {}).update(values)  # type: ignore[union-attr]
    path = directory / "driftd.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class DriftdProcess:
    """``driftd run --config`` in a subprocess with its output in a log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DriftdProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(self.config), "--log-level", "info"],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
            )
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def metrics_port(log: Path, timeout: float = 60) -> int:
    """The HTTP port the daemon reports in its log ("listening on http://host:port")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in reversed(log.read_text(errors="replace").splitlines()):
            if "driftd listening on http://" in line:
                return int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        time.sleep(0.1)
    raise TimeoutError(f"daemon did not report its port; log:\n{log.read_text()[-2000:]}")


def http_status(port: int, path: str) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).status
    except urllib.error.HTTPError as exc:
        return exc.code
