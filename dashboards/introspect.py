"""Read a generated dashboard model back: its panels, queries and template variables.

Used by the structural and end-to-end tests and by the README layout table, so that
all three look at the JSON Grafana receives rather than at the builders.

>>> model = {"panels": [{"type": "row", "title": "R", "panels": []},
...     {"type": "stat", "title": "S", "targets": [{"expr": "up{job=\\"$job\\"}"}]}],
...     "templating": {"list": [{"name": "job", "type": "query", "query": "label_values(up, job)"}]}}
>>> [q.expr for q in queries(model)]
['label_values(up, job)', 'up{job="$job"}']
>>> sorted(variable_references('up{job="$job"} ${__from} [[x]] ${y:csv}'))
['__from', 'job', 'x', 'y']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUILTIN_VARIABLES",
    "Query",
    "all_references",
    "iter_panels",
    "queries",
    "rows",
    "variable_references",
    "variables",
]

# Variables Grafana defines itself (global and data-link variables, without their paths).
BUILTIN_VARIABLES = frozenset({
    "__from", "__to", "__interval", "__interval_ms", "__rate_interval", "__range", "__range_s",
    "__range_ms", "__dashboard", "__org", "__user", "__name", "__timeFilter", "__url_time_range",
    "__field", "__series", "__value", "__data", "__all_variables", "__auto",
    "timeFilter",
})

# $name, ${name}, ${name:format}, ${name.path}, [[name]]
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w]*)[^}]*\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)[^\]]*\]\]")


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression and where it sits."""

    dashboard: str
    panel: str  # panel title, or "variable <name>"
    ref_id: str
    expr: str
    instant: bool
    is_variable: bool


def iter_panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and panels nested in collapsed rows included, in order."""
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def rows(model: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(row title, panels under it) in reading order; panels before any row go under ''."""
    result: list[tuple[str, list[dict[str, Any]]]] = []
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            result.append((panel.get("title", ""), list(panel.get("panels", []))))
        elif result:
            result[-1][1].append(panel)
        else:
            result.append(("", [panel]))
    return result


def variables(model: dict[str, Any]) -> list[dict[str, Any]]:
    return list(model.get("templating", {}).get("list", []))


def _variable_query(variable: dict[str, Any]) -> str | None:
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query if isinstance(query, str) and query else None


def queries(model: dict[str, Any]) -> list[Query]:
    """Every PromQL expression: query variables first, then panel targets."""
    title = model.get("title", "")
    found = [
        Query(title, f"variable {v['name']}", "", expr, True, True)
        for v in variables(model)
        if v.get("type") == "query" and (expr := _variable_query(v))
    ]
    for panel in iter_panels(model):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append(Query(title, panel.get("title", ""), target.get("refId", ""),
                                   target["expr"], bool(target.get("instant")), False))
    return found


def variable_references(text: str) -> set[str]:
    """Names of the template variables ``text`` refers to."""
    return {next(g for g in match.groups() if g) for match in _REFERENCE.finditer(text)}


def all_references(value: Any) -> set[str]:
    """Variable names referenced anywhere in a JSON value (titles, queries, links)."""
    return variable_references(json.dumps(value, ensure_ascii=False))
