"""Annotation text written once, rendered two ways.

Alert annotations are Go templates that Prometheus expands. The generated
``promtool test rules`` files must state the *expanded* text of every annotation,
so each annotation is written once as a Python function of a :class:`Renderer`:

* :class:`GoTemplate` renders the Prometheus template (``{{ $labels.model }}``);
* :class:`Expected` renders what Prometheus should produce for known labels and
  value (``fraud``), which goes into the unit tests.

``promtool test rules`` then checks that both renderings agree, so a template
mistake fails a test instead of paging someone with a broken link.

>>> describe = lambda r: f"{r.label('model')} drifted ({r.value()})"
>>> describe(GoTemplate())
'{{ $labels.model }} drifted ({{ printf "%.3f" $value }})'
>>> describe(Expected({"model": "fraud"}, value=0.5))
'fraud drifted (0.500)'
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["WINDOW_END_METRIC", "Expected", "GoTemplate", "GrafanaTemplate", "Renderer"]

WINDOW_END_METRIC = "driftd_window_end_timestamp_seconds"


class Renderer(Protocol):
    """What an annotation function may ask for."""

    def label(self, name: str) -> str:
        """The value of alert label ``name``."""

    def label_q(self, name: str) -> str:
        """The value of label ``name``, escaped for a URL query string."""

    def value(self, fmt: str = "%.3f") -> str:
        """The alert's value formatted with printf-style ``fmt``."""

    def window_time(self, name: str, offset: float, scale: float) -> str:
        """``&name=(window_end + offset) * scale`` of the alert's window, or ``""`` if unknown."""


class GoTemplate:
    """Renders Prometheus (Go ``text/template``) annotation templates."""

    def label(self, name: str) -> str:
        return f"{{{{ $labels.{name} }}}}"

    def label_q(self, name: str) -> str:
        return f"{{{{ $labels.{name} | urlquery }}}}"

    def value(self, fmt: str = "%.3f") -> str:
        return f'{{{{ printf "{fmt}" $value }}}}'

    def window_time(self, name: str, offset: float, scale: float) -> str:
        # Looks up the end of the alert's last closed window when the annotation is
        # expanded; ``with`` drops the parameter when no such window is exported.
        query = f"max({WINDOW_END_METRIC}{{model=%q,version=%q,segment=%q}})"
        if offset:
            query = f"{query} {'+' if offset > 0 else '-'} {abs(offset):g}"
        if scale != 1:
            query = f"({query}) * {scale:g}"
        return (
            f"{{{{ with printf `{query}` $labels.model $labels.version $labels.segment | query }}}}"
            f'&{name}={{{{ . | first | value | printf "%.0f" }}}}{{{{ end }}}}'
        )


class GrafanaTemplate(GoTemplate):
    """Renders the same annotations for Grafana-managed rules.

    Grafana expands annotations with Prometheus's template engine, but ``query`` is a
    no-op there and the value of a query is ``$values.<refId>.Value``. Window times
    therefore come from ``window_ref``, a query with the alert's labels whose value is
    the end of the alert's last closed window (0 when unknown), and from one Grafana
    math expression per (offset, scale) that this renderer hands out in
    :attr:`window_terms` (ref id -> expression).
    """

    def __init__(self, value_ref: str = "A", window_ref: str = "W") -> None:
        self.value_ref = value_ref
        self.window_ref = window_ref
        self.window_terms: dict[str, str] = {}

    def value(self, fmt: str = "%.3f") -> str:
        return f'{{{{ printf "{fmt}" $values.{self.value_ref}.Value }}}}'

    def window_time(self, name: str, offset: float, scale: float) -> str:
        expression = f"${self.window_ref}"
        if offset:
            expression = f"{expression} {'+' if offset > 0 else '-'} {abs(offset):g}"
        if scale != 1:
            expression = f"({expression}) * {scale:g}"
        ref = next((r for r, e in self.window_terms.items() if e == expression), None)
        if ref is None:
            ref = f"{self.window_ref}{len(self.window_terms) + 1}"
            self.window_terms[ref] = expression
        return (
            f"{{{{ if gt $values.{self.window_ref}.Value 0.0 }}}}"
            f'&{name}={{{{ printf "%.0f" $values.{ref}.Value }}}}{{{{ end }}}}'
        )


@dataclass(frozen=True)
class Expected:
    """Renders what Prometheus should expand for ``labels``, ``value`` and a window end.

    ``window_end`` is the value of the alert's :data:`WINDOW_END_METRIC` series in the
    unit test (None when the test has none).
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    value_: float = float("nan")
    window_end: float | None = None

    def __init__(
        self,
        labels: Mapping[str, str],
        value: float = float("nan"),
        window_end: float | None = None,
    ) -> None:
        object.__setattr__(self, "labels", dict(labels))
        object.__setattr__(self, "value_", value)
        object.__setattr__(self, "window_end", window_end)

    def label(self, name: str) -> str:
        return self.labels.get(name, "")

    def label_q(self, name: str) -> str:
        # Go's url.QueryEscape, which ``urlquery`` uses, escapes like quote_plus.
        return urllib.parse.quote_plus(self.label(name))

    def value(self, fmt: str = "%.3f") -> str:
        return fmt % self.value_

    def window_time(self, name: str, offset: float, scale: float) -> str:
        if self.window_end is None:
            return ""
        return f"&{name}={'%.0f' % ((self.window_end + offset) * scale)}"
