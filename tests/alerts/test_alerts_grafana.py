"""Grafana-managed alert rules: the same alerts as the Prometheus rules, in Grafana's
documented file and API shapes, with the same behaviour (checked by promtool on the
rules' own unit-test cases) and the same annotation text."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as sdk_alerting
from tests.alerts.grafana_checks import expand, rule_values
from tests.alerts.grafana_fake_provisioning import schema_errors

from alerts.catalogue import RuleOptions, build_alerts, build_recording_rules
from alerts.errors import AlertsError
from alerts.grafana import (
    CONTACT_POINTS_FILE,
    POLICIES_FILE,
    RULES_FILE,
    build_grafana_rules,
    contact_points,
    driftd_policy,
    grafana_files,
    inline_recording_rules,
    info_mute_timing,
    window_end_query,
)
from alerts.rules import alert_annotations, dump_yaml, rule_groups
from alerts.ruletests import TestPlan, _inputs, _window_series
from alerts.templating import Expected
from alerts.tools import promtool_test_rules
from monitor.config import Settings, load_settings

PAGER, TICKET = "https://pager.example/hook", "https://tickets.example/hook"
# Go's %.6g and Python's agree on the values of the cases.
VALUE = '{{ printf "%.6g" $value }}'


@pytest.fixture(params=["default", "custom"])
def settings(request, custom_config) -> Settings:
    return Settings() if request.param == "default" else load_settings(custom_config)


def _files(settings: Settings) -> dict[str, dict]:
    texts = grafana_files(settings, pager_url=PAGER, ticket_url=TICKET)
    return {name: yaml.safe_load(text) for name, text in texts.items()}


def test_provisioning_files_follow_grafanas_file_format(settings: Settings) -> None:
    files = _files(settings)
    assert sorted(files) == sorted([RULES_FILE, CONTACT_POINTS_FILE, POLICIES_FILE])
    for name, content in files.items():
        assert schema_errors("alertingFile", content) == [], name
    rules = [r for g in files[RULES_FILE]["groups"] for r in g["rules"]]
    assert {g["folder"] for g in files[RULES_FILE]["groups"]} == {"driftd"}
    # Grafana expands ${VAR} in annotations and $VAR in other strings of provisioning
    # files from its environment; none of ours may contain one by accident.
    for rule in rules:
        assert all("${" not in text for text in rule["annotations"].values()), rule["title"]
        assert "$" not in rule["title"] + rule["uid"] + "".join(rule["labels"].values())
    points = {p["name"]: p["receivers"][0]["settings"]["url"] for p in files[CONTACT_POINTS_FILE]["contactPoints"]}
    assert points == {"driftd-pager": PAGER, "driftd-ticket": TICKET}


def test_api_bodies_follow_the_provisioning_api_shapes(settings: Settings) -> None:
    rules = build_grafana_rules(settings)
    for rule in rules.api_rules():
        assert schema_errors("ProvisionedAlertRule", rule) == [], rule["title"]
    for group in rules.api_groups():
        assert schema_errors("AlertRuleGroup", group) == []
    for point in contact_points(PAGER, TICKET):
        assert schema_errors("EmbeddedContactPoint", point) == []
    assert schema_errors("route", driftd_policy()) == []
    assert schema_errors("muteTimeInterval", info_mute_timing()) == []


def test_the_schema_rejects_what_grafana_would_drop_or_refuse() -> None:
    """The committed schema is not vacuous: a misspelt key, a bad enum or a missing field fails."""
    rule = build_grafana_rules(Settings()).api_rules()[0]
    assert schema_errors("ProvisionedAlertRule", {**rule, "keepFiringFor": "5m"})  # file spelling
    assert schema_errors("ProvisionedAlertRule", {**rule, "noDataState": "Ok"})
    assert schema_errors("ProvisionedAlertRule", {k: v for k, v in rule.items() if k != "folderUID"})
    broken = json.loads(json.dumps(rule))
    broken["data"][1]["model"]["type"] = "maths"
    assert schema_errors("ProvisionedAlertRule", broken)
    assert schema_errors("route", {**driftd_policy(), "object_matchers": [["severity", "==", "x"]]})
    point = contact_points(PAGER, TICKET)[0]
    assert schema_errors("EmbeddedContactPoint", {**point, "settings": {"uri": PAGER}})


def test_rules_round_trip_through_the_grafana_sdk_models(settings: Settings) -> None:
    """Field names are those of grafana-foundation-sdk's alerting models (Grafana 11.6)
    (which predate keep_firing_for, a Grafana 12 field)."""
    for rule in build_grafana_rules(settings).api_rules():
        back = json.loads(json.dumps(sdk_alerting.Rule.from_json(rule), cls=JSONEncoder))
        assert back == {k: v for k, v in rule.items() if k != "keep_firing_for"}
    policy = driftd_policy()
    assert json.loads(json.dumps(sdk_alerting.NotificationPolicy.from_json(policy),
                                 cls=JSONEncoder)) == policy
    for point in contact_points(PAGER, TICKET):
        assert json.loads(json.dumps(sdk_alerting.ContactPoint.from_json(point),
                                     cls=JSONEncoder)) == point


def test_same_alerts_as_the_prometheus_rules(settings: Settings) -> None:
    options = RuleOptions.from_settings(settings)
    prometheus = {r["alert"]: (g["name"], r) for g in rule_groups(settings, options)["groups"]
                  for r in g["rules"] if "alert" in r}
    grafana = {r["title"]: r for r in build_grafana_rules(settings, options).api_rules()}
    assert sorted(grafana) == sorted(prometheus)
    recorded = {r.record: r.expr for r in build_recording_rules(settings, options)}
    for name, (group, rule) in prometheus.items():
        ours = grafana[name]
        assert ours["ruleGroup"] == group and ours["labels"] == rule["labels"]
        assert ours.get("for", "0s") == rule.get("for", "0s")
        assert ours.get("keep_firing_for") == rule.get("keep_firing_for")
        assert sorted(ours["annotations"]) == sorted(rule["annotations"])
        assert ours["annotations"]["summary"] == rule["annotations"]["summary"]
        assert ours["annotations"]["runbook_url"] == rule["annotations"]["runbook_url"]
        query = next(q for q in ours["data"] if q["refId"] == "A")
        assert query["model"]["expr"] == inline_recording_rules(rule["expr"], recorded)
        assert ours["condition"] == "C" and ours["noDataState"] == "OK"
        # Grafana's own conversion of a Prometheus rule (pkg/services/ngalert/prom/query.go):
        # every returned series alerts, whatever its value.
        math_node, threshold = ours["data"][1]["model"], ours["data"][2]["model"]
        assert math_node["expression"] == "is_number($A) || is_nan($A) || is_inf($A)"
        assert threshold["expression"] == "B"
        assert threshold["conditions"] == [{"evaluator": {"type": "gt", "params": [0]}}]


def test_annotations_expand_to_the_text_promtool_checks_for_prometheus(settings: Settings) -> None:
    """Each case of each alert: the Grafana annotations, expanded as Grafana does with the
    case's labels, value and window end, equal the Prometheus annotations' expected text
    (the text the generated promtool tests assert)."""
    options = RuleOptions.from_settings(settings)
    grafana = {r["title"]: r for r in build_grafana_rules(settings, options).api_rules()}
    checked = 0
    for spec in build_alerts(settings, options):
        for case in spec.cases:
            labels = {k: v for k, v in case.labels.items() if v != ""}
            labels["severity"] = spec.severity
            # W = 0 means "no window" in Grafana; only a unit-test window ends at epoch 0.
            end = case.window_end or None
            want = alert_annotations(spec, Expected(labels, value=case.value, window_end=end),
                                     settings)
            values = rule_values(grafana[spec.name], case.value, case.window_end)
            got = {k: expand(t, labels, values) for k, t in grafana[spec.name]["annotations"].items()}
            assert got == want, spec.name
            checked += 1
    assert checked >= len(grafana)


def test_expand_refuses_template_actions_it_does_not_check() -> None:
    with pytest.raises(ValueError, match="outside the checked subset"):
        expand("{{ $labels.model | title }}", {"model": "m"}, {})
    assert expand('{{ if gt $values.W.Value 0.0 }}&t={{ printf "%.0f" $values.W.Value }}{{ end }}',
                  {}, {"W": 0.0}) == ""


@pytest.mark.integration
def test_grafana_queries_behave_like_the_prometheus_rules(settings, tmp_path, promtool) -> None:
    """promtool runs each Grafana query A as an alert, without any recording rule loaded,
    on the cases of the Prometheus rule's unit tests: it fires with the same labels and
    value, and stays quiet on the quiet inputs. Query W on the firing inputs has the
    alert's labels and the window end (0 when the alert has no window)."""
    options = RuleOptions.from_settings(settings, for_duration="0s")
    plan = TestPlan(settings, options)
    grafana = {r["title"]: r for r in build_grafana_rules(settings, options).api_rules()}
    rules, tests = [], []
    for spec in build_alerts(settings, options):
        data = {q["refId"]: q["model"].get("expr") for q in grafana[spec.name]["data"]}
        # A value the cases leave open (NaN) is not compared.
        compare = not any(math.isnan(case.value) for case in spec.cases)
        rules.append({"alert": spec.name, "expr": data["A"], "labels": {"severity": spec.severity},
                      "annotations": {"value": VALUE} if compare else {}})
        if "W" in data:
            assert data["W"] == window_end_query(data["A"])
            rules.append({"alert": f"{spec.name}Window", "expr": data["W"],
                          "annotations": {"end": '{{ printf "%.0f" $value }}'}})
        for case in spec.cases:
            labels = {k: v for k, v in case.labels.items() if v != ""}
            fired = {"exp_labels": {**labels, "severity": spec.severity}}
            if compare:
                fired["exp_annotations"] = {"value": "%.6g" % case.value}
            window = _window_series(case)
            checks = [{"eval_time": f"{plan.fire_at}s", "alertname": spec.name,
                       "exp_alerts": [fired]}]
            if "W" in data:
                checks.append({"eval_time": f"{plan.fire_at}s", "alertname": f"{spec.name}Window",
                               "exp_alerts": [{"exp_labels": labels, "exp_annotations": {
                                   "end": f"{case.window_end or 0:.0f}"}}]})
            tests.append({"interval": f"{plan.interval}s",
                          "input_series": _inputs(case, plan, True) + window,
                          "alert_rule_test": checks})
            tests.append({"interval": f"{plan.interval}s",
                          "input_series": _inputs(case, plan, False) + window,
                          "alert_rule_test": [{"eval_time": f"{plan.fire_at}s",
                                               "alertname": spec.name, "exp_alerts": []}]})
    (tmp_path / "grafana-queries.yml").write_text(dump_yaml({"groups": [{"name": "g", "rules": rules}]}))
    (tmp_path / "tests.yml").write_text(dump_yaml({
        "rule_files": ["grafana-queries.yml"], "evaluation_interval": f"{plan.interval}s",
        "tests": tests}))
    assert "SUCCESS" in promtool_test_rules([tmp_path / "tests.yml"], promtool)


def test_inlining_refuses_a_recording_rule_with_matchers() -> None:
    with pytest.raises(AlertsError, match="label matchers"):
        inline_recording_rules('driftd:x:y{reason="a"} > 0', {"driftd:x:y": "sum(z)"})
    with pytest.raises(AlertsError, match="not a driftd recording rule"):
        inline_recording_rules("driftd:unknown:rule > 0", {})


def test_interval_must_suit_grafanas_scheduler() -> None:
    with pytest.raises(AlertsError, match="multiple of 10s"):
        build_grafana_rules(Settings(), interval="15s")
    assert build_grafana_rules(Settings(), interval="30s").api_groups()[0]["interval"] == 30


def test_info_alerts_are_muted_and_critical_pages() -> None:
    policy = driftd_policy()
    by_severity = {r["object_matchers"][0][2]: r for r in policy["routes"]}
    assert by_severity["critical"]["receiver"] == "driftd-pager"
    assert by_severity["warning"]["receiver"] == "driftd-ticket"
    assert by_severity["info"]["mute_time_intervals"] == [info_mute_timing()["name"]]
    severities = {s.severity for s in build_alerts(Settings(), RuleOptions())}
    assert severities <= set(by_severity)


def test_a_broken_spec_changes_the_grafana_rule_too() -> None:
    """There is no second list: a change to an AlertSpec reaches the Grafana rule."""
    options = RuleOptions()
    specs = build_alerts(Settings(), options)
    changed = [dataclasses.replace(s, expr="up == 2") if s.name == "DriftdDown" else s for s in specs]
    rules = {r["title"]: r for r in build_grafana_rules(Settings(), options, alerts=changed).api_rules()}
    assert rules["DriftdDown"]["data"][0]["model"]["expr"] == "up == 2"
