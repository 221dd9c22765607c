"""``driftd demo``: the whole path on one machine.

Starts the embedded broker, builds baselines from generated training data (and
trains a small model for SHAP when the explain extra is installed), runs a
simulated serving service that logs predictions for two models with delayed
labels, and the daemon. On schedule:

* ``credit``: two input features shift by one standard deviation at 1/3 of the run
  (data drift);
* ``churn``: inputs stay put, but from 1/2 of the run the labels of segment
  ``region=eu`` flip (concept drift).

Event time runs ``speed`` times faster than the wall clock, so five-minute windows
close every few seconds; it starts ``duration x speed`` behind the wall clock and
reaches it at the end (the progress line shows both, see :mod:`monitor.demo_progress`),
since the daemon refuses event times from the future. Everything started is stopped
on exit or Ctrl-C.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from monitor.baseline import build_baseline
from monitor.broker import EmbeddedBroker
from monitor.config import load_settings
from monitor.simulate import Scenario, encode, label_events, prediction_events, training_frame

__all__ = ["run_demo", "scenarios"]

log = logging.getLogger(__name__)

LABEL_DELAY = 240.0  # event-time seconds between a prediction and its label


def scenarios(start: float, span: float, seed: int = 0) -> list[Scenario]:
    """The demo's two models and when they drift (event time); ``seed`` varies the data, not the schedule."""
    return [
        Scenario(model="credit", version="v1", drift_features=("num_0", "num_1"), drift_start=start + span / 3, shift=1.0, seed=11 + 100 * seed),
        Scenario(model="churn", version="v3", drift_features=(), concept_start=start + span / 2, concept_segment="eu", seed=12 + 100 * seed),
    ]


class _Service(threading.Thread):
    """The simulated serving service: logs predictions and, later, their labels."""

    def __init__(self, bootstrap: str, settings_topics: tuple[str, str], models: list[Scenario], start: float, rate: float, speed: float, seed: int = 0) -> None:
        super().__init__(name="demo-service", daemon=True)
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, compression_type="gzip")
        self.predictions_topic, self.labels_topic = settings_topics
        self.models = models
        self.start_time = start
        self.rate = rate
        self.speed = speed
        self.seed_offset = 1_000_000 * seed
        self.stop_event = threading.Event()
        self.pending_labels: list[dict] = []
        self.sent = {m.model: 0 for m in models}
        self.wall_started: float | None = None

    def event_now(self, wall_started: float) -> float:
        return self.start_time + (time.monotonic() - wall_started) * self.speed

    def run(self) -> None:
        self.wall_started = wall_started = time.monotonic()
        produced_until = self.start_time
        tick = 0
        while not self.stop_event.wait(0.25):
            now = self.event_now(wall_started)
            n = int((now - produced_until) * self.rate)
            if n <= 0:
                continue
            for scenario in self.models:
                events, labels = prediction_events(scenario, produced_until, n, self.rate, seed=1000 + tick + self.seed_offset)
                for value in encode(events):
                    self.producer.send(self.predictions_topic, value, key=scenario.model.encode())
                self.sent[scenario.model] += n
                self.pending_labels.extend(label_events(events, labels, LABEL_DELAY, jitter=60.0, seed=tick + self.seed_offset, coverage=0.9))
            produced_until += n / self.rate
            due = [label for label in self.pending_labels if label["timestamp"] <= now]
            self.pending_labels = [label for label in self.pending_labels if label["timestamp"] > now]
            for value in encode(due):
                self.producer.send(self.labels_topic, value, key=b"labels")
            tick += 1
        try:
            self.producer.flush(timeout=10)
        finally:
            self.producer.close(timeout=5)


def _write_config(workdir: Path, bootstrap: str, store_url: str, port: int, models: list[dict], explain: bool) -> Path:
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "max_poll_interval_ms": 60_000, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
        # A finite run: its last windows are closed when it stops.
        "windows": {"size_seconds": 300, "allowed_lateness_seconds": 30, "min_events": 200, "close_on_shutdown": True},
        "models": models,
        "baseline_dir": str(workdir / "baselines"),
        "store": {"url": store_url},
        "http": {"host": "127.0.0.1", "port": port},
        "checkpoint": {"interval_seconds": 5},
        "explain": {"enabled": explain, "base_rate": 0.01, "workers": 1, "max_per_second": 20},
    }
    path = workdir / "driftd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _train_models(workdir: Path, frames: dict[str, object]) -> dict[str, Path]:
    try:
        from explainers.demo_model import train_demo_model
    except ImportError as exc:
        print(f"  explanations off: {exc}")
        return {}
    paths = {}
    for name, frame in frames.items():
        features = frame.drop(columns=["prediction", "score"])  # type: ignore[attr-defined]
        paths[name] = train_demo_model(features, "target", workdir / "models" / f"{name}.json")
    return paths


def _generate_artifacts(config: Path, workdir: Path) -> None:
    """Alert rules and dashboards for the demo configuration (best effort, printed)."""
    driftd = [sys.executable, "-m", "monitor.cli"]
    for what, command in (
        ("alert rules", [*driftd, "rules", "generate", "--config", str(config), "--out", str(workdir / "rules")]),
        ("dashboards", [*driftd, "dashboards", "generate", "--config", str(config), "--out", str(workdir / "dashboards")]),
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        status = f"written to {command[-1]}" if result.returncode == 0 else f"failed: {result.stderr.strip()[-300:]}"
        print(f"  {what}: {status}")


def run_demo(duration: float, workdir: Path, store_url: str | None, port: int, rate: float, speed: float, explain: bool, artifacts: bool = True, seed: int = 0) -> int:
    """Run the demo for ``duration`` wall seconds; returns the exit code."""
    from monitor.daemon import Daemon

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # A demo starts from scratch: its broker is new, so old checkpoints and baselines would lie.
    shutil.rmtree(workdir / "baselines", ignore_errors=True)
    if store_url is None:
        for leftover in workdir.glob("driftd.db*"):
            leftover.unlink()
        store_url = f"sqlite:///{workdir / 'driftd.db'}"
    span = duration * speed
    # Event time ends at the wall clock: a service does not log predictions from the future
    # (the daemon refuses times past limits.max_future_seconds as bad_timestamp).
    start = time.time() - span
    models = scenarios(start, span, seed)
    print(f"driftd demo: {duration:.0f} s, event time x{speed:.0f}, seed {seed}, work directory {workdir}")
    frames = {m.model: training_frame(m) for m in models}
    model_files = _train_models(workdir, frames) if explain else {}
    model_config = []
    for scenario in models:
        frame = frames[scenario.model]
        importances = None
        if scenario.model in model_files:
            from explainers import global_importances

            importances = global_importances(model_files[scenario.model], frame.drop(columns=["target", "prediction", "score"]))
        baseline = build_baseline(
            frame, scenario.model, scenario.version, target="target", prediction="prediction", score="score",
            importances=importances, source="generated training data",
        )
        path = baseline.save(workdir / "baselines" / scenario.model / f"{scenario.version}.json")
        print(f"  baseline {scenario.model} {scenario.version}: {len(baseline.features)} features -> {path.relative_to(workdir)}")
        entry: dict[str, object] = {"name": scenario.model, "baseline": str(path)}
        if scenario.model in model_files:
            entry["model_file"] = str(model_files[scenario.model])
        model_config.append(entry)

    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    daemon = service = None
    try:
        config_path = _write_config(workdir, broker.bootstrap_servers, store_url, port, model_config, bool(model_files))
        settings = load_settings(config_path)
        if artifacts:
            _generate_artifacts(config_path, workdir)
        daemon = Daemon(settings).start()
        print(f"  broker   {broker.bootstrap_servers} (embedded Tansu)")
        print(f"  metrics  http://127.0.0.1:{daemon.http.port}/metrics   health /healthz /readyz")
        print(f"  store    {store_url}")
        print(f"  app      driftd app --config {config_path}")
        service = _Service(broker.bootstrap_servers, (settings.kafka.predictions_topic, settings.kafka.labels_topic), models, start, rate, speed, seed)
        service.start()
        print(f"  schedule credit: num_0, num_1 shift at +{span / 3 / 60:.0f} min event time; churn: labels flip for region=eu at +{span / 2 / 60:.0f} min")
        _progress(daemon, service, duration)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping")
    finally:
        if service is not None:
            service.stop_event.set()
            service.join(timeout=15)
        if daemon is not None:
            if service is not None:
                _drain(daemon, service)
            daemon.stop()
        broker.stop()
    if daemon is not None:
        _summary(daemon, models)
    return 0


def _progress(daemon: object, service: _Service, duration: float) -> None:
    from monitor.demo_progress import progress_line

    started = time.monotonic()
    deadline = started + duration
    last = 0.0
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            print(progress_line(daemon, service, last - started, duration, time.time()), flush=True)


def _counted(daemon: Any) -> float:
    """Prediction events the daemon has read so far (windowed, late or invalid)."""
    total = 0.0
    for family in daemon.registry.collect():
        if family.name in ("driftd_events", "driftd_late_events", "driftd_invalid_events"):
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def _drain(daemon: Any, service: _Service, timeout: float = 60.0) -> None:
    """Let the daemon read what the service sent before it stops (bounded; a loaded
    machine may have left it behind the simulated service)."""
    sent = sum(service.sent.values())
    deadline = time.monotonic() + timeout
    told = False
    while time.monotonic() < deadline and _counted(daemon) < sent:
        if not told:
            print(f"  waiting (at most {timeout:.0f} s) for the daemon to read the last "
                  f"{sent - _counted(daemon):,.0f} events", flush=True)
            told = True
        time.sleep(0.5)


def _summary(daemon: object, models: list[Scenario]) -> None:
    recent = daemon.pipeline.recent  # type: ignore[attr-defined]
    print("\nwhat drifted (first window flagged, event time):")
    for scenario in models:
        first: dict[str, float] = {}
        concept = None
        for (key, start), report in sorted(recent.items(), key=lambda kv: kv[0][1]):
            if key.model != scenario.model:
                continue
            for feature in report.drifted_features:
                first.setdefault(feature, start)
            accuracy = report.performance.get("accuracy")
            baseline = report.baseline_performance.get("accuracy")
            if concept is None and accuracy is not None and baseline is not None and report.n_labels >= 100 and accuracy.value < baseline - 0.1:
                concept = (start, key.segment, accuracy.value, baseline)
        expected = ", ".join(scenario.drift_features) or "none (concept drift only)"
        print(f"  {scenario.model} {scenario.version}: expected {expected}")
        for feature, start in sorted(first.items(), key=lambda kv: kv[1]):
            print(f"    {feature:12s} from {time.strftime('%H:%M', time.localtime(start))}")
        if concept is not None:
            start, segment, value, baseline = concept
            print(f"    accuracy drop in {segment} from {time.strftime('%H:%M', time.localtime(start))}: {value:.3f} vs baseline {baseline:.3f}")
