"""Run every query of the generated dashboards against a live Prometheus.

A panel whose query returns nothing shows "No data" forever, which on a monitoring
dashboard is indistinguishable from "all is well". :func:`check_dashboards` resolves
template variables the way Grafana does on first load (``label_values`` through the
Prometheus label-values API, first value in natural order, ``All`` for multi-value
variables) and runs each expression: range queries over ``[start, end]``, instant
queries at ``end``. A result counts only when it holds at least one finite sample.

``driftd dashboards check --prometheus-url URL`` prints the same report.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.errors import DashboardError
from dashboards.introspect import Query, queries, variables

__all__ = ["PrometheusQueryError", "PrometheusUnreachableError", "QueryCheck", "check_dashboards", "label_values", "substitute"]

_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[A-Za-z_]\w*)\s*\)\s*$")
_NATURAL = re.compile(r"(\d+)")
# Grafana's VariableSort values that order values from high to low.
_DESCENDING = frozenset({2, 4, 6, 8})


class PrometheusQueryError(DashboardError):
    """Prometheus rejected a query."""


class PrometheusUnreachableError(DashboardError):
    """No answer from Prometheus at all; checking further queries is pointless."""


@dataclass(frozen=True, slots=True)
class QueryCheck:
    """The outcome of one query: how many series had finite samples, or the error."""

    query: Query
    promql: str
    series: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.series > 0


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in _NATURAL.split(text)]


class _Prometheus:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        # Query endpoints take POST (long expressions); label values only GET.
        encoded = urllib.parse.urlencode(list(params))
        if path.startswith("label/"):
            request = urllib.request.Request(f"{self.url}/api/v1/{path}?{encoded}")
        else:
            request = urllib.request.Request(f"{self.url}/api/v1/{path}", data=encoded.encode(),
                                             method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
            except ValueError:
                raise PrometheusQueryError(f"Prometheus {path}: HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise PrometheusUnreachableError(f"cannot query Prometheus at {self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]


def label_values(prom: _Prometheus, expr: str, start: float, end: float) -> list[str]:
    """Values of a ``label_values([selector,] label)`` variable query, natural order."""
    match = _LABEL_VALUES.match(expr)
    if match is None:
        raise PrometheusQueryError(f"unsupported variable query {expr!r} (expected label_values)")
    params = [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
    if match["selector"]:
        params.append(("match[]", match["selector"]))
    values = prom.get(f"label/{match['label']}/values", params)
    return sorted((v for v in values if v != ""), key=_natural_key)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``$name``, ``${name}`` and ``${name:format}`` with ``values[name]``.

    >>> substitute('up{a="$a", b=~"${b}"}[$__rate_interval]', {"a": "x", "b": ".*",
    ...            "__rate_interval": "1m"})
    'up{a="x", b=~".*"}[1m]'
    """
    for name in sorted(values, key=len, reverse=True):
        value = values[name].replace("\\", "\\\\")  # a literal replacement, not a template
        text = re.sub(r"\$\{" + re.escape(name) + r"(?::[^}]*)?\}", value, text)
        text = re.sub(r"\$" + re.escape(name) + r"(?![\w])", value, text)
    return text


def _finite_series(data: dict[str, Any]) -> int:
    if data["resultType"] == "matrix":
        return sum(any(math.isfinite(float(v)) for _, v in item["values"]) for item in data["result"])
    if data["resultType"] == "vector":
        return sum(math.isfinite(float(item["value"][1])) for item in data["result"])
    if data["resultType"] == "scalar":
        return int(math.isfinite(float(data["result"][1])))
    return 0


def _resolve(prom: _Prometheus, model: dict[str, Any], builtins: dict[str, str],
             overrides: Mapping[str, str], start: float, end: float) -> dict[str, str]:
    """Values of the dashboard's variables, in definition order (later ones use earlier ones)."""
    values = dict(builtins)
    for variable in variables(model):
        name = variable["name"]
        if variable.get("type") == "datasource":
            continue
        if name in overrides:
            values[name] = overrides[name]
        elif variable.get("multi") and variable.get("includeAll"):
            values[name] = variable.get("allValue") or ".*"
        elif variable.get("type") == "query":
            try:
                found = label_values(prom, substitute(variable["query"], values), start, end)
            except PrometheusQueryError:
                found = []  # reported when the variable's own query is checked
            if variable.get("sort") in _DESCENDING:
                found.reverse()
            values[name] = found[0] if found else ""
    return values


def check_dashboards(
    models: Sequence[dict[str, Any]],
    prometheus_url: str,
    *,
    start: float | None = None,
    end: float | None = None,
    step: float = 15.0,
    rate_interval: str = "1m",
    overrides: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> list[QueryCheck]:
    """Run every variable and panel query of ``models``; one :class:`QueryCheck` each.

    Parameters
    ----------
    start, end
        Time range (epoch seconds) of range queries; default the last hour.
    rate_interval
        What ``$__rate_interval`` stands for (Grafana: at least 4 scrape intervals).
    overrides
        Values for template variables instead of Grafana's defaults.

    Raises
    ------
    PrometheusUnreachableError
        When Prometheus does not answer (a rejected query is reported, not raised).
    """
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    prom = _Prometheus(prometheus_url, timeout)
    builtins = {"__rate_interval": rate_interval, "__interval": f"{step:g}s",
                "__range": f"{int(end - start)}s"}
    results = []
    for model in models:
        values = _resolve(prom, model, builtins, overrides or {}, start, end)
        for query in queries(model):
            promql = substitute(query.expr, values)
            try:
                if query.is_variable:
                    found = label_values(prom, promql, start, end)
                    results.append(QueryCheck(query, promql, len(found)))
                    continue
                if query.instant:
                    data = prom.get("query", [("query", promql), ("time", f"{end:.3f}")])
                else:
                    data = prom.get("query_range", [("query", promql), ("start", f"{start:.3f}"),
                                                    ("end", f"{end:.3f}"), ("step", f"{step:g}")])
                results.append(QueryCheck(query, promql, _finite_series(data)))
            except PrometheusQueryError as exc:
                results.append(QueryCheck(query, promql, 0, str(exc)))
    return results
