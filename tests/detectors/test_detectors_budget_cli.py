"""The budget where people see it: `driftd baseline show` and the drift rules' `for`."""

from __future__ import annotations

from typer.testing import CliRunner

from alerts.catalogue import RuleOptions
from alerts.model_alerts import drift_for_duration
from monitor.cli import app
from monitor.config import Settings

from .budget_windows import AggregateWindows


def test_baseline_show_prints_the_budget_and_effective_thresholds(tmp_path) -> None:
    path = AggregateWindows().baseline.save(tmp_path / "model" / "1.json")
    result = CliRunner().invoke(app, ["baseline", "show", str(path), "--section", "budget"])
    assert result.exit_code == 0, result.output
    assert "false alarms per day (budget)  0.1" in result.output
    assert "per-window level               0.000347" in result.output
    # The long-tailed categorical at 400 events: the floor, not the configured 0.05.
    city = next(line for line in result.output.splitlines() if line.startswith("city"))
    at_400, at_50k = float(city.split()[3]), float(city.split()[5])
    assert at_400 > 0.1 and at_50k == 0.05


def test_drift_rules_for_follows_alert_windows() -> None:
    settings = Settings(drift={"alert_windows": 3})
    options = RuleOptions.from_settings(settings)
    assert drift_for_duration(settings, options) == f"{300 + 2 * 300}s"
    assert drift_for_duration(Settings(), RuleOptions.from_settings(Settings())) is None
