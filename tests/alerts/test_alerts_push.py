"""``driftd rules push`` against a real Prometheus: atomic install, promtool check first,
a failed check or a rejected reload leaves the old rules, the reload loads the new ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.cli import app
from alerts.errors import AlertsError, CheckFailed, ReloadFailed, ToolMissing
from alerts.push import loaded_groups, push_rule_files
from alerts.rules import GROUP_ORDER, RULES_FILE, generate_rule_files
from monitor.config import Settings
from tests.conftest import require_binary
from tests.realstack import Prometheus, prometheus

pytestmark = pytest.mark.integration

OLD_RULES = """groups:
- name: old-group
  rules:
  - record: old:up:sum
    expr: sum(up)
"""
# Parses as YAML, is not PromQL.
BROKEN_RULES = """groups:
- name: broken
  rules:
  - alert: Broken
    expr: sum(rate(driftd_events_total[5m]) by
"""


@pytest.fixture(scope="module")
def prom() -> Iterator[Prometheus]:
    require_binary("prometheus")
    require_binary("promtool")
    with prometheus(targets={}) as running:
        yield running


@pytest.fixture
def installed(prom: Prometheus) -> Path:
    """The rules directory of ``prom`` holding only OLD_RULES, loaded."""
    for path in prom.rules_dir.iterdir():
        path.unlink()
    (prom.rules_dir / RULES_FILE).write_text(OLD_RULES)
    prom.reload()
    assert loaded_groups(prom.url) == ["old-group"]
    return prom.rules_dir / RULES_FILE


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_push_installs_checks_and_reloads(prom, installed):
    files = generate_rule_files(Settings())
    result = push_rule_files({RULES_FILE: files[RULES_FILE]}, prom.rules_dir, prom.url)
    assert result.checked and result.reloaded
    assert result.written == [installed]
    assert installed.read_text() == files[RULES_FILE]
    assert sorted(result.groups) == sorted(GROUP_ORDER)
    # Prometheus evaluates them: every rule healthy after an evaluation round.
    groups = {g["name"]: g for g in prom.rule_groups()}
    assert "DriftdDown" in {r["name"] for r in groups["driftd-pipeline"]["rules"]}
    assert _leftovers(prom.rules_dir) == []


def test_failed_check_keeps_the_old_rules(prom, installed):
    with pytest.raises(CheckFailed, match="broken"):
        push_rule_files({RULES_FILE: BROKEN_RULES}, prom.rules_dir, prom.url)
    assert installed.read_text() == OLD_RULES
    assert _leftovers(prom.rules_dir) == []
    assert loaded_groups(prom.url) == ["old-group"]


def test_rejected_reload_restores_the_old_rules(prom, installed):
    # Without promtool nothing stops the broken file before Prometheus does.
    with pytest.raises(ReloadFailed, match="HTTP 500") as caught:
        push_rule_files(
            {RULES_FILE: BROKEN_RULES}, prom.rules_dir, prom.url, promtool="/nonexistent/promtool"
        )
    assert caught.value.rejected
    assert installed.read_text() == OLD_RULES
    prom.reload()  # disk and memory agree again
    assert loaded_groups(prom.url) == ["old-group"]


def test_required_check_without_promtool_writes_nothing(prom, installed):
    with pytest.raises(ToolMissing):
        push_rule_files(
            {RULES_FILE: "groups: []\n"},
            prom.rules_dir,
            prom.url,
            promtool="/nonexistent/promtool",
            require_check=True,
        )
    assert installed.read_text() == OLD_RULES
    assert _leftovers(prom.rules_dir) == []


def test_unreachable_prometheus_keeps_the_new_valid_rules(prom, installed, tmp_path):
    files = generate_rule_files(Settings())
    with pytest.raises(ReloadFailed, match="cannot reach") as caught:
        push_rule_files({RULES_FILE: files[RULES_FILE]}, prom.rules_dir, "http://127.0.0.1:9")
    assert not caught.value.rejected
    assert installed.read_text() == files[RULES_FILE]


def test_bad_targets_are_refused(tmp_path):
    with pytest.raises(AlertsError, match="does not exist"):
        push_rule_files({RULES_FILE: OLD_RULES}, tmp_path / "missing")
    with pytest.raises(AlertsError, match="plain file name"):
        push_rule_files({"../escape.yml": OLD_RULES}, tmp_path)


def test_cli_push(prom, installed, tmp_path):
    config = tmp_path / "driftd.yaml"
    config.write_text("alerts: {for_duration: 1m}\n")
    result = CliRunner().invoke(
        app,
        [
            "push",
            "--config",
            str(config),
            "--rules-dir",
            str(prom.rules_dir),
            "--prometheus-url",
            prom.url,
            "--require-check",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "groups loaded: driftd-drift, driftd-pipeline, driftd-quality, driftd-recording"
        in result.output
    )
    assert "for: 1m" in installed.read_text()
