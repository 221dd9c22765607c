"""``driftd rules grafana-push`` against the local server that answers like Grafana's
alerting provisioning API and checks every request against the documented shapes."""

from __future__ import annotations

import os

import pytest
import yaml
from tests.dashboards.dashboards_fake_grafana import fake_grafana
from typer.testing import CliRunner

from alerts.grafana import build_grafana_rules, contact_points, driftd_policy
from alerts.grafana_push import push_grafana_alerting
from dashboards.errors import GrafanaAuthError
from monitor.cli import app
from monitor.config import Settings

PAGER, TICKET = "https://pager.example/hook", "https://tickets.example/hook"
USER_ROUTE = {"receiver": "grafana-default-email", "object_matchers": [["team", "=", "db"]]}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRIFTD_") or name == "GRAFANA_TOKEN":
            monkeypatch.delenv(name)


def test_push_creates_then_updates_and_keeps_the_users_policies() -> None:
    rules = build_grafana_rules(Settings())
    points = contact_points(PAGER, TICKET)
    with fake_grafana() as grafana:
        grafana.provisioning.policy["routes"] = [USER_ROUTE]
        first = push_grafana_alerting(rules, points, grafana.url, "editor-token")
        second = push_grafana_alerting(rules, points, grafana.url, "editor-token")
    assert grafana.violations == []
    prov = grafana.provisioning
    wanted = {r["uid"] for r in rules.api_rules()}
    assert sorted(first.created) == sorted(wanted) and first.updated == []
    assert second.created == [] and sorted(second.updated) == sorted(wanted)
    assert set(prov.rules) == wanted and "driftd" in grafana.folders
    assert {k: v for k, v in prov.groups.items()} == {
        ("driftd", g): 60 for g in ("driftd-drift", "driftd-quality", "driftd-pipeline")}
    assert {p["uid"]: p["settings"]["url"] for p in prov.contact_points.values()
            if p["uid"].startswith("driftd")} == {"driftd-pager": PAGER, "driftd-ticket": TICKET}
    # The driftd policy is first; the user's own route and root receiver survive; twice
    # pushed, the driftd policy is there once.
    assert prov.policy["routes"] == [driftd_policy(), USER_ROUTE]
    assert prov.policy["receiver"] == "grafana-default-email"
    assert "driftd-info" in prov.mute_timings
    calls = [(m, p.partition("?")[0]) for m, p, _ in grafana.requests]
    assert ("POST", "/api/v1/provisioning/alert-rules") in calls
    assert ("PUT", "/api/v1/provisioning/policies") in calls
    # Rules, contact points and policy stay managed from code (no X-Disable-Provenance).
    assert set(prov.provenance_headers) == {None}


def test_push_deletes_driftd_rules_the_catalogue_no_longer_has() -> None:
    rules = build_grafana_rules(Settings())
    with fake_grafana() as grafana:
        push_grafana_alerting(rules, contact_points(PAGER, TICKET), grafana.url, "editor-token")
        stale = {**next(iter(grafana.provisioning.rules.values())), "uid": "driftd-retired-alert"}
        grafana.provisioning.rules["driftd-retired-alert"] = stale
        foreign = {**stale, "uid": "driftd-other-folder", "folderUID": "elsewhere"}
        grafana.provisioning.rules["driftd-other-folder"] = foreign
        done = push_grafana_alerting(rules, contact_points(PAGER, TICKET), grafana.url,
                                     "editor-token")
    assert done.deleted == ["driftd-retired-alert"]
    assert "driftd-other-folder" in grafana.provisioning.rules
    assert grafana.violations == []


def test_push_refuses_without_a_token_and_explains_a_viewer_token() -> None:
    rules = build_grafana_rules(Settings())
    with pytest.raises(GrafanaAuthError, match="GRAFANA_TOKEN"):
        push_grafana_alerting(rules, contact_points(PAGER, TICKET), "http://127.0.0.1:9", "")
    with fake_grafana() as grafana:
        grafana.folders["driftd"] = {"uid": "driftd", "title": "driftd"}
        with pytest.raises(GrafanaAuthError, match="403"):
            push_grafana_alerting(rules, contact_points(PAGER, TICKET), grafana.url, "viewer-token")


def test_push_command_reads_the_token_from_the_environment() -> None:
    with fake_grafana() as grafana:
        result = CliRunner().invoke(
            app, ["rules", "grafana-push", "--grafana-url", grafana.url, "--pager-url", PAGER,
                  "--ticket-url", TICKET], env={"GRAFANA_TOKEN": "editor-token"})
    assert result.exit_code == 0, result.output
    n = len(build_grafana_rules(Settings()).api_rules())
    assert f"rules: {n} created, 0 updated, 0 deleted" in result.output
    assert len(grafana.provisioning.rules) == n
    assert grafana.violations == []


def test_generate_command_writes_grafanas_provisioning_tree(tmp_path, custom_config) -> None:
    result = CliRunner().invoke(app, ["rules", "grafana", "--config", str(custom_config), "--out",
                                      str(tmp_path), "--pager-url", PAGER, "--ticket-url", TICKET])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "provisioning" / "alerting"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["driftd-contact-points.yaml", "driftd-policies.yaml", "driftd-rules.yaml"]
    rules = yaml.safe_load((folder / "driftd-rules.yaml").read_text())
    first = rules["groups"][0]["rules"][0]
    assert first["for"] == "2m" and first["keepFiringFor"] == "3m"  # the custom config's


def test_rules_generate_works_without_a_config(tmp_path) -> None:
    result = CliRunner().invoke(app, ["rules", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "driftd.rules.yml").exists()
    assert "no --config given: using the default settings" in result.output
