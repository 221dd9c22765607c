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

__all__ = ["WINDOW_END_METRIC", "Expected", "GoTemplate", "Renderer"]

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
