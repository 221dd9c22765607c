"""End to end: a drifting model pages someone, and driftd records the incident.

The real chain: the embedded Kafka-compatible broker -> ``driftd run`` (process) ->
the Debian Prometheus 2.42 scraping it every second with the generated rules ->
the Debian Alertmanager with the generated config -> a pager webhook (a tiny HTTP
server: the paging endpoint) and driftd's own receiver (``POST /api/v1/alerts``),
which stores the incident in driftd's SQLite store.

Event time starts a few windows in the past, so each window closes as soon as the
stream moves past it: a clean window, a window where three of eight features
shift by 1.5 standard deviations (drift share 0.375 >= 0.3, so DriftdModelDrift,
critical), then clean windows again. Then driftd is stopped and ``up == 0`` pages.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest
import yaml

from alerts.alertmanager import alertmanager_config
from alerts.catalogue import RuleOptions
from alerts.rules import RULES_FILE, generate_rule_files
from monitor.baseline import build_baseline
from monitor.config import load_settings
from monitor.simulate import Scenario, prediction_events, training_frame
from monitor.store import open_store
from monitor.store.schema import IncidentRow
from tests.conftest import require_binary
from tests.realstack import free_port, monitoring_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL, VERSION = "fraud", "v3"
WINDOW = 60  # event-time seconds
RATE = 6.0  # events per event-time second (~180 per segment and window)
CLEAN = Scenario(model=MODEL, version=VERSION, seed=31)
DRIFTING = Scenario(
    model=MODEL,
    version=VERSION,
    seed=31,
    drift_features=("num_0", "num_1", "num_2"),
    drift_start=0.0,
    shift=1.5,
)


def _config(tmp_path: Path, bootstrap: str, prefix: str, port: int) -> Path:
    frame = training_frame(CLEAN, n=4000)
    baseline = build_baseline(
        frame, MODEL, VERSION, target="target", prediction="prediction", score="score"
    )
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "predictions_topic": f"{prefix}.predictions",
            "labels_topic": f"{prefix}.labels",
            "dead_letter_topic": f"{prefix}.dead-letter",
            "group_id": f"{prefix}-driftd",
            "max_poll_interval_ms": 3000,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        },
        "windows": {"size_seconds": WINDOW, "allowed_lateness_seconds": 5, "min_events": 50},
        "models": [
            {
                "name": MODEL,
                "baseline": str(baseline.save(tmp_path / "baselines" / f"{VERSION}.json")),
            }
        ],
        "baseline_dir": str(tmp_path / "baselines"),
        "store": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"},
        "http": {"host": "127.0.0.1", "port": port},
        "checkpoint": {"interval_seconds": 1},
        # Short enough to watch pending -> firing -> resolved within seconds.
        "alerts": {"for_duration": "5s", "keep_firing_for": "2s"},
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Traffic:
    """Sends whole windows of prediction events, plus a few events that close the previous one."""

    def __init__(self, bootstrap: str, topic: str, start: float) -> None:
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.topic, self.start = topic, start

    def window(
        self, index: int, scenario: Scenario, n: int | None = None, offset: float = 0.0
    ) -> None:
        begin = self.start + index * WINDOW + offset
        events, _ = prediction_events(
            scenario, begin, n or int(WINDOW * RATE), RATE, seed=1000 + index
        )
        for event in events:
            self.producer.send(self.topic, orjson.dumps(event), key=MODEL.encode())
        self.producer.flush(timeout=10)

    def close_window(self, index: int) -> None:
        """Events 10-13 s into window ``index + 1``: the watermark passes window ``index``."""
        self.window(index + 1, CLEAN, n=20, offset=10.0)

    def stop(self) -> None:
        self.producer.close(timeout=5)


def _incidents(store, alertname: str) -> list[IncidentRow]:
    with store.session() as session:
        return list(
            session.query(IncidentRow).filter_by(alertname=alertname).order_by(IncidentRow.id)
        )


def test_drift_pages_and_is_recorded_then_resolves_and_down_pages(
    kafka_bootstrap, topic_prefix, tmp_path
):
    for binary in ("prometheus", "promtool", "prometheus-alertmanager"):
        require_binary(binary)
    port = free_port()
    config_path = _config(tmp_path, kafka_bootstrap, topic_prefix, port)
    settings = load_settings(config_path)
    files = generate_rule_files(settings, RuleOptions.from_settings(settings, rate_window="10s"))
    receiver = f"http://127.0.0.1:{port}/api/v1/alerts"

    def am_config(pager_url: str, ticket_url: str) -> dict:
        return alertmanager_config(
            pager_url,
            ticket_url,
            receiver,
            group_wait="1s",
            group_interval="1s",
            repeat_interval="1h",
            pager_repeat_interval="1h",
        )

    start = (time.time() // WINDOW - 4) * WINDOW
    traffic = Traffic(kafka_bootstrap, f"{topic_prefix}.predictions", start)
    with monitoring_stack(
        config_path,
        port=port,
        rule_files={RULES_FILE: files[RULES_FILE]},
        alertmanager_config=am_config,
    ) as stack:
        prom, pager = stack.prometheus, stack.pager
        assert pager is not None
        store = open_store(settings.store.url)
        try:
            # Window 0 is clean: exported, and no drift alert.
            traffic.window(0, CLEAN)
            traffic.close_window(0)
            wait_until(
                lambda: prom.query(f'driftd_model_drift_share_ratio{{model="{MODEL}"}}'),
                60,
                what="the first closed window in Prometheus",
            )
            assert prom.alerts("DriftdModelDrift") == []

            # Window 1 drifts: pending first (for: 5s), then firing.
            traffic.window(1, DRIFTING)
            traffic.close_window(1)
            states: list[str] = []

            def firing() -> bool:
                states.extend(a["state"] for a in prom.alerts("DriftdModelDrift"))
                return "firing" in states

            wait_until(firing, 60, interval=0.2, what="DriftdModelDrift firing in Prometheus")
            assert states[0] == "pending", states
            [alert] = [a for a in prom.alerts("DriftdModelDrift") if a["state"] == "firing"][:1]
            assert alert["labels"]["severity"] == "critical"
            assert float(alert["value"]) >= settings.drift.drift_share_threshold

            # Alertmanager pages, and driftd's receiver stores the incident.
            paged = pager.wait_for_alert("DriftdModelDrift", timeout=30)
            assert paged["labels"]["model"] == MODEL
            assert paged["annotations"]["runbook_url"].endswith("/DriftdModelDrift.md")
            link = paged["annotations"]["investigation_url"]
            assert (
                f"model={MODEL}&version={VERSION}" in link and "&from=" in link and "&to=" in link
            )
            incidents = wait_until(
                lambda: _incidents(store, "DriftdModelDrift"),
                30,
                what="the incident in driftd's store",
            )
            assert {i.status for i in incidents} == {"firing"}
            assert {i.model for i in incidents} == {MODEL}
            assert all(
                i.annotations["investigation_url"].startswith(settings.app.url) for i in incidents
            )

            # The drift ends: a clean window closes, the alert resolves, the incident closes.
            traffic.window(2, CLEAN)
            traffic.close_window(2)
            pager.wait_for_alert("DriftdModelDrift", status="resolved", timeout=60)
            closed = wait_until(
                lambda: (
                    all(i.status == "resolved" for i in _incidents(store, "DriftdModelDrift"))
                    and _incidents(store, "DriftdModelDrift")
                ),
                30,
                what="the incident resolved in driftd's store",
            )
            assert all(i.ends_at is not None and i.ends_at >= i.starts_at for i in closed)
            assert prom.alerts("DriftdModelDrift") == []
            assert pager.alerts("DriftdDown") == []
        finally:
            traffic.stop()
            store.close()

        # What the running daemon exports (after drift, labels-free windows, receiver
        # traffic) passes promtool's metric lint.
        exposition = stack.daemon.metrics_text()
        assert "driftd_model_drift_share_ratio{" in exposition
        lint = subprocess.run(
            ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), (
            lint.stdout + lint.stderr
        )

        # Pipeline alert: driftd stops, `up == 0` pages.
        stack.daemon.stop()
        down = pager.wait_for_alert("DriftdDown", timeout=60)
        assert down["labels"]["instance"] == stack.daemon.address
        assert down["labels"]["severity"] == "critical"
