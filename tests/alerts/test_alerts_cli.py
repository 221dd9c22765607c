"""``driftd rules generate | test | alertmanager`` as an operator runs them."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from alerts.rules import RULES_FILE, TESTS_FILE
from monitor.cli import app

runner = CliRunner()


@pytest.mark.integration
def test_generate_then_test_with_promtool(custom_config, tmp_path, promtool):
    out = tmp_path / "rules"
    result = runner.invoke(
        app, ["rules", "generate", "--config", str(custom_config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([RULES_FILE, TESTS_FILE])
    result = runner.invoke(app, ["rules", "test", "--out", str(out), "--promtool", promtool])
    assert result.exit_code == 0, result.output
    assert "SUCCESS: 30 rules found" in result.output
    assert result.output.count("SUCCESS") == 2


def test_test_without_generated_files_says_what_to_run(tmp_path):
    result = runner.invoke(app, ["rules", "test", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "driftd rules generate" in result.output


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("alerts: {for_duration: five minutes}\n", "alerts.for_duration"),
        ("alerts: {grafana: http://g}\n", "alerts.grafana: unknown key"),
    ],
)
def test_configuration_errors_name_the_key(config, message, tmp_path):
    path = tmp_path / "driftd.yaml"
    path.write_text(config)
    result = runner.invoke(
        app, ["rules", "generate", "--config", str(path), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.integration
def test_alertmanager_config_is_written_and_checked(tmp_path, amtool):
    path = tmp_path / "driftd.yaml"
    path.write_text("http: {host: 0.0.0.0, port: 9300}\n")
    out = tmp_path / "am" / "alertmanager.yml"
    result = runner.invoke(app, [
        "rules", "alertmanager", "--config", str(path), "--out", str(out),
        "--pager-url", "https://pager.example/hook", "--ticket-url", "https://tickets.example/hook",
        "--amtool", amtool,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "amtool check-config: SUCCESS" in result.output
    config = yaml.safe_load(out.read_text())
    urls = {
        r["name"]: r["webhook_configs"][0]["url"]
        for r in config["receivers"]
        if "webhook_configs" in r
    }
    assert urls == {
        "pager": "https://pager.example/hook",
        "ticket": "https://tickets.example/hook",
        "driftd-incidents": "http://127.0.0.1:9300/api/v1/alerts",
    }
