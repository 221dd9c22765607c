"""Helpers for the Grafana alert-rule tests: template expansion and live query checks.

:func:`expand` expands the subset of Go ``text/template`` the generated Grafana
annotations use (``$labels.x``, ``| urlquery``, ``printf "fmt" $values.R.Value``,
``if gt $values.R.Value 0.0 ... end``) the way Grafana does: it prefixes
``$labels``/``$values`` and runs Prometheus's template expander, whose only
functions these templates need are Go's built-ins. Anything outside that subset
raises, so a template that Grafana would render differently cannot pass unnoticed.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.verify import PrometheusQueryError, _finite_series, _Prometheus

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_LABEL = re.compile(r"^\$labels\.(\w+)(\s*\|\s*urlquery)?$")
_PRINTF = re.compile(r'^printf "([^"]*)" \$values\.(\w+)\.Value$')
_IF = re.compile(r"^if gt \$values\.(\w+)\.Value 0\.0$")
_TERM = re.compile(r"^\(?\$(\w+)(?: ([+-]) ([0-9.e+]+))?\)?(?: \* ([0-9.e+]+))?$")


def _go_printf(fmt: str, value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return fmt % value


def expand(template: str, labels: Mapping[str, str], values: Mapping[str, float]) -> str:
    """``template`` expanded for an alert with ``labels`` and ``$values`` ``values``."""
    out: list[str] = []
    emitting = [True]
    position = 0
    for match in _ACTION.finditer(template):
        if all(emitting):
            out.append(template[position:match.start()])
        position = match.end()
        action = match.group(1).strip()
        if action == "end":
            if len(emitting) == 1:
                raise ValueError(f"unbalanced end in {template!r}")
            emitting.pop()
        elif found := _IF.match(action):
            emitting.append(values[found.group(1)] > 0)
        elif found := _LABEL.match(action):
            text = labels.get(found.group(1), "")
            if all(emitting):
                out.append(urllib.parse.quote_plus(text) if found.group(2) else text)
        elif found := _PRINTF.match(action):
            if all(emitting):
                out.append(_go_printf(found.group(1), values[found.group(2)]))
        else:
            raise ValueError(f"template action outside the checked subset: {{{{{action}}}}}")
    if len(emitting) != 1:
        raise ValueError(f"unclosed if in {template!r}")
    out.append(template[position:])
    return "".join(out)


def evaluate_term(expression: str, values: Mapping[str, float]) -> float:
    """A window math expression such as ``($W - 3600) * 1000`` for known ``values``."""
    found = _TERM.match(expression.strip())
    if found is None:
        raise ValueError(f"unexpected math expression {expression!r}")
    ref, sign, offset, scale = found.groups()
    result = values[ref]
    if offset:
        result = result + float(offset) if sign == "+" else result - float(offset)
    return result * float(scale) if scale else result


def rule_values(rule: Mapping[str, Any], value: float, window_end: float | None) -> dict[str, float]:
    """``$values`` of a rule's alert with value ``value`` and window end (W falls back to 0)."""
    values = {"A": value, "B": 1.0, "C": 1.0}
    data = {q["refId"]: q for q in rule["data"]}
    if "W" in data:
        values["W"] = window_end or 0.0
        for ref, query in data.items():
            if query["datasourceUid"] == "__expr__" and ref.startswith("W"):
                values[ref] = evaluate_term(query["model"]["expression"], values)
    return values


@dataclass(frozen=True)
class RuleQueryCheck:
    """One data query of one Grafana rule run against Prometheus."""

    rule: str
    ref_id: str
    promql: str
    series: int
    values: tuple[float, ...] = ()
    error: str | None = None


def check_rule_queries(rules: Sequence[Mapping[str, Any]], prometheus_url: str, *,
                       at: float, timeout: float = 10.0) -> list[RuleQueryCheck]:
    """Every Prometheus query of ``rules`` as Grafana sends it: an instant query at ``at``."""
    prom = _Prometheus(prometheus_url, timeout)
    results = []
    for rule in rules:
        for query in rule["data"]:
            if query["datasourceUid"] == "__expr__":
                continue
            expr = query["model"]["expr"]
            try:
                data = prom.get("query", [("query", expr), ("time", f"{at:.3f}")])
            except PrometheusQueryError as exc:
                results.append(RuleQueryCheck(rule["title"], query["refId"], expr, 0, (), str(exc)))
                continue
            found = tuple(float(item["value"][1]) for item in data["result"])
            results.append(RuleQueryCheck(rule["title"], query["refId"], expr,
                                          _finite_series(data), found))
    return results


def metric_names(promql: str) -> set[str]:
    """Metric names a PromQL expression selects (driftd's and ``up``)."""
    return set(re.findall(r"\b(driftd_[a-z0-9_]+|up)\b(?!\s*\()", promql))
