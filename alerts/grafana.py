"""Grafana-managed alert rules built from the same :class:`AlertSpec` records as the
Prometheus rules, with a contact point and a notification policy that page on critical.

Each alert becomes one Grafana rule the way Grafana itself converts a Prometheus rule
(``pkg/services/ngalert/prom/convert.go``): query ``A`` is the alert's PromQL as an
instant query, ``B`` is the math expression ``is_number($A) || is_nan($A) ||
is_inf($A)`` and the condition ``C`` is ``B > 0``, so that, as in Prometheus, every
series the expression returns is an alert instance and no data means normal
(``noDataState: OK``). Thresholds, ``for``, ``keep_firing_for`` (Grafana 12 and
later; older versions ignore the field), labels and annotations are the Prometheus
rule's. Recording rules are inlined, so the rules need only driftd's own metrics.

Annotations use Prometheus's template engine in Grafana too, but without ``query``:
the alert's value is ``$values.A.Value``, and the window times of the dashboard and
investigation links come from query ``W`` (the end of the alert's last closed window,
with the alert's labels; 0 when unknown) and one math expression per time.

Routing: critical -> ``driftd-pager``, warning -> ``driftd-ticket``, info -> muted
(mute timing ``driftd-info``, always active), all under one policy that matches
``alertname=~"Driftd.+"``. Grafana has no inhibition rules; the Alertmanager config
remains the place for those.

>>> from monitor.config import Settings
>>> files = grafana_files(Settings(), pager_url="http://pager", ticket_url="http://ticket")
>>> sorted(files)
['driftd-contact-points.yaml', 'driftd-policies.yaml', 'driftd-rules.yaml']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.alertmanager import ALERT_NAME_PATTERN, GROUP_BY, TIMINGS
from alerts.catalogue import AlertSpec, RuleOptions, build_alerts, build_recording_rules
from alerts.errors import AlertsError
from alerts.rules import GROUP_ORDER, alert_annotations, dump_yaml
from alerts.spec import parse_duration
from alerts.templating import WINDOW_END_METRIC, GrafanaTemplate
from dashboards.uids import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from monitor.config import Settings

__all__ = [
    "CONTACT_POINTS_FILE",
    "EXPRESSION_UID",
    "INFO_MUTE_TIMING",
    "PAGER",
    "POLICIES_FILE",
    "RULES_FILE",
    "TICKET",
    "GrafanaRuleSet",
    "build_grafana_rules",
    "contact_points",
    "driftd_policy",
    "grafana_files",
    "inline_recording_rules",
    "is_driftd_policy",
    "info_mute_timing",
    "rule_uid",
    "window_end_query",
]

RULES_FILE = "driftd-rules.yaml"
CONTACT_POINTS_FILE = "driftd-contact-points.yaml"
POLICIES_FILE = "driftd-policies.yaml"
EXPRESSION_UID = "__expr__"
PAGER, TICKET = "driftd-pager", "driftd-ticket"
INFO_MUTE_TIMING = "driftd-info"
ORG_ID = 1
# How far back query A looks (Grafana's converter default); instant queries use its end.
QUERY_RANGE_S = 600
DEFAULT_INTERVAL = "1m"
WINDOW_KEYS = "job, instance, model, version, segment"
_RECORDED = re.compile(r"driftd:[A-Za-z0-9_:]+")


def rule_uid(name: str) -> str:
    """The Grafana rule uid of alert ``name``: ``DriftdFeatureDrift`` -> ``driftd-feature-drift``.

    >>> rule_uid("DriftdExplainQueueSaturated")
    'driftd-explain-queue-saturated'
    """
    words = re.findall(r"[A-Z][a-z0-9]*", name.removeprefix("Driftd"))
    return "-".join(["driftd", *(w.lower() for w in words)])


def inline_recording_rules(expr: str, recorded: Mapping[str, str]) -> str:
    """``expr`` with every recording-rule series replaced by its (parenthesised) expression.

    >>> inline_recording_rules("driftd:a:b > 1", {"driftd:a:b": "sum(x)"})
    '(sum(x)) > 1'
    """
    for _ in range(10):  # recording rules built on recording rules, a few levels deep
        found = _RECORDED.search(expr)
        if found is None:
            return expr
        name = found.group(0)
        if name not in recorded:
            raise AlertsError(f"{name} is not a driftd recording rule")
        if expr[found.end():found.end() + 1] in ("{", "["):
            raise AlertsError(f"{name} is used with label matchers or a range; "
                              f"Grafana rules inline recording rules, so filter inside the rule")
        expr = f"{expr[:found.start()]}({recorded[name]}){expr[found.end():]}"
    raise AlertsError(f"recording rules nested too deep in {expr!r}")


def _query(ref: str, expr: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "queryType": "",
        "relativeTimeRange": {"from": QUERY_RANGE_S, "to": 0},
        "datasourceUid": DATASOURCE_UID,
        "model": {
            "refId": ref,
            "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
            "expr": expr,
            "instant": True,
            "range": False,
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }


def _expression(ref: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "refId": ref,
        "queryType": kind,
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": EXPRESSION_UID,
        "model": {"refId": ref, "datasource": {"type": EXPRESSION_UID, "uid": EXPRESSION_UID},
                  "type": kind, **fields},
    }


def window_end_query(expr: str) -> str:
    """PromQL with the labels of ``expr``'s series and the end of their last window (0: none)."""
    one = f"count without () ({expr})"
    return (f"({one}\n * on ({WINDOW_KEYS}) group_left\n"
            f"max by ({WINDOW_KEYS}) ({WINDOW_END_METRIC}))\nor\n({one} * 0)")


def _data(spec: AlertSpec, expr: str, template: GrafanaTemplate) -> list[dict[str, Any]]:
    data = [
        _query("A", expr),
        _expression("B", "math", expression="is_number($A) || is_nan($A) || is_inf($A)"),
        _expression("C", "threshold", expression="B",
                    conditions=[{"evaluator": {"type": "gt", "params": [0]}}]),
    ]
    if template.window_terms:
        data.append(_query(template.window_ref, window_end_query(expr)))
        data += [_expression(ref, "math", expression=term)
                 for ref, term in template.window_terms.items()]
    return data


@dataclass(frozen=True)
class GrafanaRuleSet:
    """The rules by group (:data:`alerts.rules.GROUP_ORDER` order), in the file format's keys."""

    groups: dict[str, list[dict[str, Any]]]
    interval: str

    @property
    def interval_s(self) -> int:
        return int(parse_duration(self.interval))

    def file(self) -> dict[str, Any]:
        """The alert-rule provisioning file (``provisioning/alerting/``)."""
        return {"apiVersion": 1, "groups": [
            {"orgId": ORG_ID, "name": name, "folder": FOLDER_TITLE,
             "interval": self.interval, "rules": rules}
            for name, rules in self.groups.items()]}

    def api_rules(self) -> list[dict[str, Any]]:
        """Each rule as the provisioning API's ``ProvisionedAlertRule``."""
        out = []
        for group, rules in self.groups.items():
            for rule in rules:
                body = {k: v for k, v in rule.items() if k != "keepFiringFor"}
                if "keepFiringFor" in rule:
                    body["keep_firing_for"] = rule["keepFiringFor"]
                out.append({**body, "orgID": ORG_ID, "folderUID": FOLDER_UID, "ruleGroup": group})
        return out

    def api_groups(self) -> list[dict[str, Any]]:
        """Each group as the API's ``AlertRuleGroup`` (title, folder, interval in seconds)."""
        by_group: dict[str, list[dict[str, Any]]] = {}
        for rule in self.api_rules():
            by_group.setdefault(rule["ruleGroup"], []).append(rule)
        return [{"title": name, "folderUid": FOLDER_UID, "interval": self.interval_s,
                 "rules": rules} for name, rules in by_group.items()]


def _rule(spec: AlertSpec, settings: Settings, options: RuleOptions,
          recorded: Mapping[str, str]) -> dict[str, Any]:
    template = GrafanaTemplate()
    annotations = alert_annotations(spec, template, settings)
    expr = inline_recording_rules(spec.expr, recorded)
    rule: dict[str, Any] = {
        "uid": rule_uid(spec.name),
        "title": spec.name,
        "condition": "C",
        "data": _data(spec, expr, template),
        "noDataState": "OK",
        "execErrState": "Error",
        "for": options.for_duration if parse_duration(options.for_duration) > 0 else "0s",
    }
    if spec.keep_firing and parse_duration(options.keep_firing_for) > 0:
        rule["keepFiringFor"] = options.keep_firing_for
    rule.update(annotations=annotations, labels={"severity": spec.severity}, isPaused=False)
    return rule


def build_grafana_rules(settings: Settings, options: RuleOptions | None = None, *,
                        interval: str = DEFAULT_INTERVAL,
                        alerts: Iterable[AlertSpec] | None = None) -> GrafanaRuleSet:
    """The Grafana rules of every alert (or of ``alerts``), evaluated every ``interval``.

    Raises
    ------
    AlertsError
        When ``interval`` is not a positive multiple of 10 s (Grafana's scheduler tick).
    """
    options = options or RuleOptions.from_settings(settings)
    seconds = parse_duration(interval, "interval")
    if seconds <= 0 or seconds % 10:
        raise AlertsError(f"interval: {interval!r} must be a positive multiple of 10s "
                          f"(Grafana evaluates rules on a 10 s tick)")
    recorded = {r.record: r.expr for r in build_recording_rules(settings, options)}
    specs = list(build_alerts(settings, options) if alerts is None else alerts)
    groups: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUP_ORDER}
    for spec in specs:
        groups.setdefault(spec.group, []).append(_rule(spec, settings, options, recorded))
    return GrafanaRuleSet({g: r for g, r in groups.items() if r}, interval)


def _webhook(uid: str, url: str) -> dict[str, Any]:
    return {"uid": uid, "name": uid, "type": "webhook",
            "settings": {"url": url, "httpMethod": "POST"}, "disableResolveMessage": False}


def contact_points(pager_url: str, ticket_url: str) -> list[dict[str, Any]]:
    """The two webhook contact points, as the API's ``EmbeddedContactPoint``."""
    if not pager_url or not ticket_url:
        raise AlertsError("both a pager and a ticket webhook URL are needed")
    return [_webhook(PAGER, pager_url), _webhook(TICKET, ticket_url)]


def info_mute_timing() -> dict[str, Any]:
    """A mute timing that is always active: info alerts are shown in Grafana, never sent."""
    return {"name": INFO_MUTE_TIMING, "time_intervals": [{"weekdays": ["monday:sunday"]}]}


def driftd_policy() -> dict[str, Any]:
    """The notification policy for driftd alerts (a child of the org's root policy)."""
    return {
        "receiver": TICKET,
        "object_matchers": [["alertname", "=~", ALERT_NAME_PATTERN]],
        "group_by": list(GROUP_BY),
        "group_wait": TIMINGS["group_wait"],
        "group_interval": TIMINGS["group_interval"],
        "repeat_interval": TIMINGS["repeat_interval"],
        "routes": [
            {"receiver": PAGER, "object_matchers": [["severity", "=", "critical"]],
             "repeat_interval": TIMINGS["pager_repeat_interval"]},
            {"receiver": TICKET, "object_matchers": [["severity", "=", "warning"]]},
            {"receiver": TICKET, "object_matchers": [["severity", "=", "info"]],
             "mute_time_intervals": [INFO_MUTE_TIMING]},
        ],
    }


def is_driftd_policy(route: Mapping[str, Any]) -> bool:
    """Whether ``route`` is the policy :func:`driftd_policy` installs (by its matcher)."""
    return [list(m) for m in route.get("object_matchers") or []] == \
        driftd_policy()["object_matchers"]


def grafana_files(settings: Settings, options: RuleOptions | None = None, *, pager_url: str,
                  ticket_url: str, interval: str = DEFAULT_INTERVAL) -> dict[str, str]:
    """File name -> YAML text of the three files for Grafana's ``provisioning/alerting/``.

    The policies file sets the organisation's whole notification policy tree (Grafana
    provisions it as one object): the root sends to ``driftd-ticket`` and the driftd
    policy routes by severity. ``driftd rules grafana-push`` instead merges the driftd
    policy into an existing tree.
    """
    rules = build_grafana_rules(settings, options, interval=interval)
    points = contact_points(pager_url, ticket_url)
    contact_file = {"apiVersion": 1, "contactPoints": [
        {"orgId": ORG_ID, "name": p["name"], "receivers": [
            {k: p[k] for k in ("uid", "type", "settings", "disableResolveMessage")}]}
        for p in points]}
    policies_file = {
        "apiVersion": 1,
        "muteTimes": [{"orgId": ORG_ID, **info_mute_timing()}],
        "policies": [{"orgId": ORG_ID, "receiver": TICKET, "group_by": ["grafana_folder", "alertname"],
                      "routes": [driftd_policy()]}],
    }
    return {RULES_FILE: dump_yaml(rules.file()), CONTACT_POINTS_FILE: dump_yaml(contact_file),
            POLICIES_FILE: dump_yaml(policies_file)}
