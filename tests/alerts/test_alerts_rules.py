"""Generated rule files: promtool accepts them, their unit tests pass and can fail,
they enumerate the registry and the configuration, and every alert has a runbook."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from alerts.catalogue import RuleOptions, build_alerts, build_recording_rules
from alerts.errors import AlertsError, CheckFailed
from alerts.rules import RULES_FILE, TESTS_FILE, alert_annotations, generate_rule_files
from alerts.templating import Expected, GoTemplate
from alerts.tools import promtool_check_rules, promtool_test_rules
from detectors.registry import REGISTRY
from monitor.config import ConfigError, Settings, load_settings

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
# Every field an alerting or recording rule may carry in Prometheus 2.42.
RULE_FIELDS_242 = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
REQUIRED_ALERTS = {
    "DriftdFeatureDrift",
    "DriftdModelDrift",
    "DriftdPredictionDrift",
    "DriftdPerformanceDrop",
    "DriftdCalibrationDrift",
    "DriftdConceptDriftAlarm",
    "DriftdAttributionDrift",
    "DriftdMissingValueSurge",
    "DriftdUnseenCategories",
    "DriftdSchemaViolations",
    "DriftdDown",
    "DriftdNoEvents",
    "DriftdStaleWindows",
    "DriftdConsumerLagHigh",
    "DriftdDeadLetterRate",
    "DriftdExplainQueueSaturated",
    "DriftdStoreErrors",
}


def _write(files: dict[str, str], directory: Path) -> tuple[Path, Path]:
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory / RULES_FILE, directory / TESTS_FILE


@pytest.mark.integration
def test_generated_rules_pass_promtool_check_and_unit_tests(tmp_path, promtool):
    """Default settings; a custom configuration goes through the CLI in test_alerts_cli."""
    rules, tests = _write(generate_rule_files(Settings()), tmp_path)
    assert "SUCCESS" in promtool_check_rules([rules], promtool)
    assert "SUCCESS" in promtool_test_rules([tests], promtool)


@pytest.mark.integration
def test_unit_tests_fail_when_a_rule_is_wrong(tmp_path, promtool):
    """The generated tests are not vacuous: a broken threshold or template fails them."""
    rules, tests = _write(generate_rule_files(Settings()), tmp_path)
    text = rules.read_text()
    broken = text.replace(
        "driftd_model_drift_share_ratio >= 0.3", "driftd_model_drift_share_ratio >= 0.9"
    )
    assert broken != text
    rules.write_text(broken)
    with pytest.raises(CheckFailed, match="DriftdModelDrift"):
        promtool_test_rules([tests], promtool)
    # The segment of the model-level cases ("region=eu") must be URL-escaped in links.
    rules.write_text(text.replace("$labels.segment | urlquery", "$labels.segment | html"))
    with pytest.raises(CheckFailed, match="region%3Deu"):
        promtool_test_rules([tests], promtool)


def test_every_alert_has_firing_and_quiet_tests():
    files = generate_rule_files(Settings())
    tests = yaml.safe_load(files[TESTS_FILE])["tests"]
    fired: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for group in tests:
        for check in group["alert_rule_test"]:
            target = fired if check["exp_alerts"] else quiet
            target[check["alertname"]] = target.get(check["alertname"], 0) + 1
    names = {a.name for a in build_alerts(Settings(), RuleOptions())}
    assert REQUIRED_ALERTS <= names
    assert set(fired) == names
    assert set(quiet) == names


def test_rule_files_use_only_prometheus_242_fields():
    groups = yaml.safe_load(generate_rule_files(Settings())[RULES_FILE])["groups"]
    for group in groups:
        assert set(group) == {"name", "rules"}
        for rule in group["rules"]:
            assert set(rule) <= RULE_FIELDS_242, rule
            if "alert" in rule:
                assert rule["labels"]["severity"] in ("critical", "warning", "info")
                assert {"summary", "description", "runbook_url", "dashboard_url"} <= set(
                    rule["annotations"]
                )
                # The summary is static; only the description is templated.
                assert "{{" not in rule["annotations"]["summary"]
                assert "{{" in rule["annotations"]["description"]


def test_severities_page_on_model_drift_performance_and_down():
    severities = {a.name: a.severity for a in build_alerts(Settings(), RuleOptions())}
    assert {n for n, s in severities.items() if s == "critical"} == {
        "DriftdModelDrift",
        "DriftdPerformanceDrop",
        "DriftdDown",
    }
    assert "info" in severities.values()


def test_rules_enumerate_the_registry_and_configuration(custom_config):
    settings = load_settings(custom_config)
    options = RuleOptions.from_settings(settings)
    margin = next(
        r for r in build_recording_rules(settings, options) if "threshold_ratio" in r.record
    )
    assert set(re.findall(r'method="(\w+)"', margin.expr)) == set(REGISTRY)
    alerts = {a.name: a for a in build_alerts(settings, options)}
    # Per-method thresholds from drift.thresholds reach the unit-test cases.
    thresholds = {
        case.labels["method"]: next(s for s in case.series if "threshold" in s.selector).firing
        for case in alerts["DriftdFeatureDrift"].cases
    }
    assert thresholds == {
        name: settings.drift.thresholds.get(name, spec.default_threshold)
        for name, spec in REGISTRY.items()
    }
    assert "driftd_model_drift_share_ratio >= 0.5" in alerts["DriftdModelDrift"].expr
    assert "> 130" in alerts["DriftdStaleWindows"].expr  # 2 x 60 s windows + 10 s lateness
    for model in ("fraud", "churn"):
        assert f'model="{model}"' in alerts["DriftdNoEvents"].expr
    rule_text = generate_rule_files(settings)[RULES_FILE]
    assert "for: 2m" in rule_text and "keep_firing_for: 3m" in rule_text
    # Every alert threshold of the configuration file reaches its rule.
    assert "[10m]" in rule_text and "[5m]" not in rule_text
    expected = {
        "DriftdPerformanceDrop": "driftd_performance_baseline * 0.9",
        "DriftdCalibrationDrift": "> 0.07",
        "DriftdMissingValueSurge": "> 0.2",
        "DriftdUnseenCategories": "> 0.08",
        "DriftdDeadLetterRate": "> 0.02",
        "DriftdConsumerLagHigh": "> 5000",
        "DriftdExplainQueueSaturated": "> 0.75",
    }
    for name, fragment in expected.items():
        assert fragment in alerts[name].expr, (name, alerts[name].expr)


def test_bad_options_name_the_key():
    with pytest.raises(AlertsError, match="alerts.for_duration"):
        RuleOptions(for_duration="five minutes").validate()
    with pytest.raises(AlertsError, match="alerts.rate_window"):
        RuleOptions.from_settings(Settings(alerts={"rate_window": "0s"}))
    with pytest.raises(AlertsError, match="alerts.job"):
        RuleOptions.from_settings(Settings(alerts={"job": "my job"}))
    # The command line wins over the configuration; None keeps the configuration.
    settings = Settings(alerts={"job": "models", "rate_window": "2m"})
    assert RuleOptions.from_settings(settings, job=None).job == "models"
    assert RuleOptions.from_settings(settings, rate_window="1m").rate_window == "1m"


@pytest.mark.parametrize(
    ("alerts", "key"),
    [
        ({"unseen_ratio": 0}, "alerts.unseen_ratio"),
        ({"performance_tolerance": 1.5}, "alerts.performance_tolerance"),
        ({"consumer_lag": -1}, "alerts.consumer_lag"),
        ({"ece_increase": "high"}, "alerts.ece_increase"),
    ],
)
def test_bad_alert_thresholds_in_the_configuration_name_the_key(alerts, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(None, alerts=alerts)


def test_investigation_link_opens_the_alerted_window_in_the_app(custom_config):
    """The link the alert carries decodes, in the app, to the model, feature and window."""
    from dashboards.app.params import parse_route

    settings = load_settings(custom_config)
    spec = next(
        a
        for a in build_alerts(settings, RuleOptions.from_settings(settings))
        if a.name == "DriftdFeatureDrift"
    )
    labels = {"model": "fraud", "version": "v 2", "segment": "region=eu", "feature": "amount&tax"}
    window_end = 1_763_888_400.0
    annotations = alert_annotations(spec, Expected(labels, 2.0, window_end), settings)
    url = urllib.parse.urlsplit(annotations["investigation_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}".rstrip("/") == settings.app.url
    route = parse_route(dict(urllib.parse.parse_qsl(url.query)))
    assert (route.model, route.version, route.segment, route.feature) == (
        "fraud",
        "v 2",
        "region=eu",
        "amount&tax",
    )
    assert route.end.timestamp() == window_end
    assert route.start.timestamp() == window_end - settings.windows.size_seconds
    assert annotations["runbook_url"] == "https://runbooks.example/driftd/DriftdFeatureDrift.md"
    assert annotations["dashboard_url"].startswith(
        "https://grafana.example/d/driftd-model?var-model=fraud&var-version=v+2"
    )
    # The template side asks Prometheus for the same window.
    template = alert_annotations(spec, GoTemplate(), settings)["investigation_url"]
    assert "driftd_window_end_timestamp_seconds" in template and "| urlquery" in template


def test_every_alert_is_documented():
    text = (RUNBOOKS.parent / "alerts.md").read_text()
    for spec in build_alerts(Settings(), RuleOptions()):
        assert f"| {spec.name} | " in text, spec.name


def test_every_alert_has_a_runbook_page():
    for spec in build_alerts(Settings(), RuleOptions()):
        page = RUNBOOKS / f"{spec.name}.md"
        assert page.exists(), f"missing runbook {page}"
        text = page.read_text()
        assert text.startswith(f"# {spec.name}\n"), page
        for section in (
            "## What it means",
            "## How to confirm",
            "## First actions",
            "## Roll back or retrain",
        ):
            assert section in text, f"{page}: missing section {section!r}"


@pytest.mark.integration
def test_a_method_where_lower_scores_mean_drift(monkeypatch, tmp_path, promtool):
    """No registered method has higher_is_drift=False today; the rules must still orient it."""
    import dataclasses

    import alerts.catalogue
    import alerts.model_alerts

    lower = dataclasses.replace(REGISTRY["ks"], name="similarity", higher_is_drift=False)
    registry = {"ks": REGISTRY["ks"], "similarity": lower}
    monkeypatch.setattr(alerts.catalogue, "REGISTRY", registry)
    monkeypatch.setattr(alerts.model_alerts, "REGISTRY", registry)
    files = generate_rule_files(Settings())
    assert (
        'driftd_feature_drift_threshold{method="similarity"} / '
        'driftd_feature_drift_score{method="similarity"}'
    ) in files[RULES_FILE]
    _, tests = _write(files, tmp_path)
    assert "SUCCESS" in promtool_test_rules([tests], promtool)
