"""Fixtures of the alert tests: configurations and the Debian Prometheus tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary

# Several models (absent-series rules per model), threshold overrides, every alert
# threshold set and short durations, next to the defaults: both must generate rules
# that pass promtool.
CUSTOM_CONFIG = """
models:
  - name: fraud
  - name: churn
drift:
  drift_share_threshold: 0.5
  thresholds: {psi: 0.25, ks: 0.15}
windows:
  size_seconds: 60
  allowed_lateness_seconds: 10
alerts:
  for_duration: 2m
  keep_firing_for: 3m
  rate_window: 10m
  performance_tolerance: 0.1
  ece_increase: 0.07
  missing_increase: 0.2
  unseen_ratio: 0.08
  dead_letter_ratio: 0.02
  consumer_lag: 5000
  explain_queue_ratio: 0.75
  runbook_base_url: https://runbooks.example/driftd
  grafana_url: https://grafana.example
app:
  url: https://investigate.example/app
"""


@pytest.fixture
def custom_config(tmp_path: Path) -> Path:
    path = tmp_path / "driftd.yaml"
    path.write_text(CUSTOM_CONFIG)
    return path


@pytest.fixture
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture
def amtool() -> str:
    return require_binary("amtool")


@pytest.fixture
def alertmanager_bin() -> str:
    return require_binary("prometheus-alertmanager")
