"""Every metric driftd exports passes ``promtool check metrics``, and every metric the
generated rules query is one driftd exports."""

from __future__ import annotations

import re
import subprocess

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from alerts.rules import RULES_FILE, generate_rule_files
from detectors.base import DriftResult
from monitor.config import Settings
from monitor.metrics import CALIBRATION_STATISTICS, PERFORMANCE_METRICS, create_metrics
from monitor.results import AttributionSummary, MetricValue, WindowKey, WindowReport


def _populated_registry() -> CollectorRegistry:
    registry, pipeline, windows = create_metrics(max_keys=2)
    for segment in ("", "region=eu", "region=us"):  # the third key is refused by the cap
        key = WindowKey("fraud", "v1", segment)
        windows.publish(
            WindowReport(
                key=key,
                window_start=1_700_000_000.0,
                window_end=1_700_000_300.0,
                n_events=500,
                features=[
                    DriftResult("ks", "amount", 0.31, 1e-9, 0.1, True),
                    DriftResult("chisquare", "country", 0.05, 0.2, 0.1, False),
                    DriftResult("psi", "age", float("nan"), None, 0.2, False),
                ],
                prediction=[DriftResult("psi", "__prediction__", 0.4, None, 0.2, True)],
                label=[DriftResult("chisquare", "__label__", 0.01, 0.8, 0.1, False)],
                drift_share=1 / 3,
                drift_score=0.4,
                model_drifted=True,
                missing_ratio={"amount": 0.3, "country": 0.0},
                baseline_missing_ratio={"amount": 0.01},
                unseen_ratio={"country": 0.12},
                n_labels=250,
                performance={m: MetricValue(0.8, 0.75, 0.85) for m in PERFORMANCE_METRICS},
                baseline_performance={m: 0.9 for m in PERFORMANCE_METRICS},
                estimated_performance={"accuracy": MetricValue(0.82)},
                calibration={name: 0.1 for name in CALIBRATION_STATISTICS},
                baseline_calibration={name: 0.05 for name in CALIBRATION_STATISTICS},
                attribution=AttributionSummary(
                    0.7, True, 0.9, 50, {"amount": 0.2}, {"amount": 0.5}
                ),
            )
        )
    pipeline.events.labels(model="fraud", version="v1").inc(500)
    pipeline.invalid_events.labels(reason="schema").inc()
    pipeline.late_events.labels(model="fraud").inc()
    pipeline.feature_type_errors.labels(model="fraud").inc()
    pipeline.consumer_lag.labels(topic="driftd.predictions", partition="0").set(12)
    pipeline.windows_closed.labels(model="fraud").inc()
    pipeline.window_close_delay.observe(1.5)
    pipeline.window_compute.observe(0.004)
    pipeline.batch_duration.observe(0.02)
    pipeline.store_errors.labels(operation="write_reports").inc()
    pipeline.labels.labels(outcome="joined").inc()
    pipeline.explain_queue_depth.set(3)
    pipeline.explain_queue_capacity.set(1000)
    pipeline.explain_dropped.labels(model="fraud", reason="queue_full").inc()
    pipeline.explain_latency.observe(2.0)
    pipeline.concept_drift_alarms.labels(model="fraud", version="v1", detector="adwin").inc()
    pipeline.last_alarm.record("fraud", "v1", "region=eu", "adwin", 1_700_000_100.0)
    pipeline.incidents.labels(status="firing").inc()
    return registry


def _promtool_check_metrics(promtool: str, text: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=text.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
def test_exported_metrics_pass_promtool_check_metrics(promtool):
    text = generate_latest(_populated_registry())
    assert b"driftd_feature_drift_score{" in text and b"driftd_series_capped_total 1.0" in text
    result = _promtool_check_metrics(promtool, text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).strip() == ""


@pytest.mark.integration
def test_promtool_check_metrics_catches_a_misnamed_metric(promtool):
    registry = CollectorRegistry()
    Gauge("driftd_queue_total", "A gauge named like a counter.", registry=registry).set(1)
    result = _promtool_check_metrics(promtool, generate_latest(registry))
    assert result.returncode != 0 and "_total" in result.stdout + result.stderr


def test_rules_query_only_exported_metrics():
    exported = {family.name for family in _populated_registry().collect()}
    exported |= {f"{name}_total" for name in exported} | {"up"}
    rules = generate_rule_files(Settings())[RULES_FILE]
    queried = set(re.findall(r"\bdriftd_[a-z_]+", rules)) | {"up"}
    assert len(queried) > 20, queried
    assert queried - exported == set()
