"""Render the Prometheus rule file: recording rules, then alerts grouped by concern.

Only fields Prometheus 2.42 knows are written (``keep_firing_for`` arrived in 2.42).

>>> from monitor.config import Settings
>>> files = generate_rule_files(Settings())
>>> sorted(files)
['driftd.rules.test.yml', 'driftd.rules.yml']
>>> "DriftdModelDrift" in files["driftd.rules.yml"]
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from alerts.catalogue import (
    AlertSpec,
    RecordingRule,
    RuleOptions,
    build_alerts,
    build_recording_rules,
    parse_duration,
)
from alerts.templating import GoTemplate, Renderer
from dashboards.uids import MODEL_UID, PIPELINE_UID
from monitor.config import Settings

__all__ = [
    "RULES_FILE",
    "TESTS_FILE",
    "alert_annotations",
    "dump_yaml",
    "generate_rule_files",
    "rule_groups",
]

RULES_FILE = "driftd.rules.yml"
TESTS_FILE = "driftd.rules.test.yml"
GROUP_ORDER = ("driftd-recording", "driftd-drift", "driftd-quality", "driftd-pipeline")
# Grafana shows this many windows before the alert's window (and two after).
GRAFANA_CONTEXT_WINDOWS = 12


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so PromQL stays readable; no YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    """YAML text with keys in insertion order and no line folding."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)


def alert_annotations(spec: AlertSpec, r: Renderer, settings: Settings) -> dict[str, str]:
    """The annotations of ``spec`` rendered by ``r`` (a template, or expected test text).

    ``dashboard_url`` opens the Grafana dashboard of the model (or the pipeline);
    ``investigation_url`` opens the Streamlit app on the model, version, segment,
    feature and window the alert is about (epoch seconds in ``from``/``to``).
    """
    size = settings.windows.size_seconds
    grafana = settings.alerts.grafana_url.rstrip("/")
    annotations = {
        "summary": spec.summary,
        "description": spec.describe(r),
        "runbook_url": f"{settings.alerts.runbook_base_url.rstrip('/')}/{spec.name}.md",
    }
    if spec.scope == "pipeline":
        annotations["dashboard_url"] = (
            f"{grafana}/d/{PIPELINE_UID}?var-instance={r.label_q('instance')}"
        )
        return annotations
    key = f"model={r.label_q('model')}&version={r.label_q('version')}"
    annotations["dashboard_url"] = (
        f"{grafana}/d/{MODEL_UID}?var-{key.replace('&', '&var-')}"
        + r.window_time("from", -GRAFANA_CONTEXT_WINDOWS * size, 1000)
        + r.window_time("to", 2 * size, 1000)
    )
    link = f"{settings.app.url.rstrip('/')}/?{key}&segment={r.label_q('segment')}"
    if spec.scope == "feature":
        link += f"&feature={r.label_q('feature')}"
    annotations["investigation_url"] = (
        link + r.window_time("from", -size, 1) + r.window_time("to", 0, 1)
    )
    return annotations


def _recording(rule: RecordingRule) -> dict[str, Any]:
    return {"record": rule.record, "expr": rule.expr}


def _alerting(spec: AlertSpec, settings: Settings, options: RuleOptions) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": spec.name, "expr": spec.expr}
    duration = spec.for_duration or options.for_duration
    if parse_duration(duration) > 0:
        rule["for"] = duration
    if spec.keep_firing and parse_duration(options.keep_firing_for) > 0:
        rule["keep_firing_for"] = options.keep_firing_for
    rule["labels"] = {"severity": spec.severity}
    rule["annotations"] = alert_annotations(spec, GoTemplate(), settings)
    return rule


def rule_groups(
    settings: Settings,
    options: RuleOptions,
    alerts: Iterable[AlertSpec] | None = None,
) -> dict[str, Any]:
    """The rule file as a mapping: ``{"groups": [...]}`` in :data:`GROUP_ORDER`."""
    alerts = list(build_alerts(settings, options) if alerts is None else alerts)
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in GROUP_ORDER}
    for rule in build_recording_rules(settings, options):
        groups.setdefault(rule.group, []).append(_recording(rule))
    for spec in alerts:
        groups.setdefault(spec.group, []).append(_alerting(spec, settings, options))
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups.items() if rules]}


def generate_rule_files(settings: Settings, options: RuleOptions | None = None) -> dict[str, str]:
    """File name -> text of the rule file and its ``promtool test rules`` file."""
    from alerts.ruletests import rule_tests

    options = options or RuleOptions.from_settings(settings)
    alerts = build_alerts(settings, options)
    return {
        RULES_FILE: dump_yaml(rule_groups(settings, options, alerts)),
        TESTS_FILE: dump_yaml(rule_tests(settings, options, alerts, RULES_FILE)),
    }
