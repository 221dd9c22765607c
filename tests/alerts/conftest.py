"""Fixtures of the alert tests: configurations and the Debian Prometheus tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary

# Several models (absent-series rules per model), a threshold override and short
# durations, next to the defaults: both must generate rules that pass promtool.
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
