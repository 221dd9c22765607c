"""Terminal tables of the CLI: they fit 80 columns, and ``--wide`` shows every column in full.

Widths are computed here rather than left to a layout engine, so the result is
predictable: names (features, methods) are never cut; when the table is wider than
the limit, only the columns marked ``flexible`` (free text: sources, categories)
are shortened, with an ellipsis. ``--wide`` sets no limit (a wide terminal, a file).

>>> t = TextTable([Column("name"), Column("note", flexible=True)], title="demo")
>>> t.add_row("psi", "a long explanation of the method")
>>> print("\\n".join(line.plain for line in t.lines(width=20)))
demo
name  note
----  --------------
psi   a long explan…
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["Column", "TextTable", "compare_table", "fmt", "methods_table", "print_table"]

NARROW = 80
_GAP = "  "
_MIN_FLEXIBLE = 8


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    right: bool = False
    flexible: bool = False


class TextTable:
    """Rows of text cells (a cell may carry a rich style) laid out to a width."""

    def __init__(self, columns: list[Column], title: str = "", caption: str = "") -> None:
        self.columns, self.title, self.caption = columns, title, caption
        self.rows: list[list[tuple[str, str]]] = []

    def add_row(self, *cells: str | tuple[str, str]) -> None:
        self.rows.append([c if isinstance(c, tuple) else (str(c), "") for c in cells])

    def _widths(self, width: int | None) -> list[int]:
        widths = [
            max([len(c.header)] + [len(r[i][0]) for r in self.rows])
            for i, c in enumerate(self.columns)
        ]
        if width is None:
            return widths
        excess = sum(widths) + len(_GAP) * (len(widths) - 1) - width
        flexible = sorted(
            (i for i, c in enumerate(self.columns) if c.flexible), key=lambda i: -widths[i]
        )
        for i in flexible:
            if excess <= 0:
                break
            floor = max(_MIN_FLEXIBLE, len(self.columns[i].header))
            cut = min(excess, max(0, widths[i] - floor))
            widths[i] -= cut
            excess -= cut
        return widths

    def lines(self, width: int | None = NARROW) -> list[Text]:
        widths = self._widths(width)
        out: list[Text] = []
        if self.title:
            out += [Text(t) for t in (textwrap.wrap(self.title, width) if width else [self.title])]
        out.append(self._line([(c.header, "bold") for c in self.columns], widths))
        out.append(Text(_GAP.join("-" * w for w in widths)))
        out += [self._line(row, widths) for row in self.rows]
        if self.caption:
            out += [
                Text(t, style="dim")
                for t in (textwrap.wrap(self.caption, width) if width else [self.caption])
            ]
        return out

    def _line(self, cells: list[tuple[str, str]], widths: list[int]) -> Text:
        line = Text()
        last = len(cells) - 1
        for i, ((text, style), w, column) in enumerate(zip(cells, widths, self.columns)):
            if len(text) > w:
                text = text[: max(0, w - 1)] + "…"
            padded = text.rjust(w) if column.right else (text if i == last else text.ljust(w))
            line.append(padded, style=style or None)
            if i != last:
                line.append(_GAP)
        line.rstrip()
        return line


def print_table(table: TextTable, wide: bool = False, console: Console | None = None) -> None:
    """Print at most 80 columns wide (or the terminal's width if narrower), unbounded with ``wide``."""
    console = console or Console(highlight=False, soft_wrap=True)
    width = None if wide else min(NARROW, console.width) if console.is_terminal else NARROW
    for line in table.lines(width):
        console.print(line)


def render_text(table: TextTable, wide: bool = False) -> str:
    """The table as plain text (for ``--out`` files)."""
    return "\n".join(line.plain for line in table.lines(None if wide else NARROW)) + "\n"


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for a table cell: ``—`` for missing, ``inf``, small values in 2 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.{digits}f}"


_DRIFT = ("DRIFT", "bold red")
_SHORT_KINDS = {"numeric": "num", "categorical": "cat", "multivariate": "multi"}


def methods_table(wide: bool = False) -> TextTable:
    """Every method of :data:`detectors.registry.REGISTRY`: kinds, threshold, direction, source."""
    from detectors.registry import REGISTRY, choose_method

    automatic = {choose_method("numeric"), choose_method("categorical")}
    columns = [
        Column("method"),
        Column("kinds"),
        Column("threshold", right=True),
        Column("drift if" if wide else "if"),
        Column("p-value"),
    ]
    columns += (
        [Column("description"), Column("source")] if wide else [Column("source", flexible=True)]
    )
    out = TextTable(
        columns,
        title="Drift methods (drift.numeric_method, drift.categorical_method, drift.multivariate_method, "
        "models[].features.<name>.method)",
        caption="threshold: the default of drift.thresholds.<method>; drift if the score passes it (if: >= "
        "or <=) and, for "
        "methods with a p-value, the p-value corrected across the model's features is below "
        "drift.alpha. (auto): the automatic choice. Sources in full: driftd methods --wide; "
        "reasoning: docs/detectors.md.",
    )
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        kinds = ", ".join(
            sorted(spec.kinds) if wide else sorted(_SHORT_KINDS[k] for k in spec.kinds)
        )
        direction = ">=" if spec.higher_is_drift else "<="
        cells = [
            name + (" (auto)" if name in automatic else ""),
            kinds,
            fmt(spec.default_threshold),
            f"score {direction} threshold" if wide else direction,
        ]
        cells += (
            [spec.test or "—", spec.description, spec.source]
            if wide
            else ["yes" if spec.test else "—", spec.source]
        )
        out.add_row(*cells)
    return out


def compare_table(comparison: Any, wide: bool = False) -> TextTable:
    """Per-feature verdicts of ``driftd compare`` (plus the multivariate rows)."""
    outputs = ("__prediction__", "__prediction_score__", "__label__")
    n_features = sum(1 for n in comparison.profiles if n not in outputs)
    basis = (
        "decided as `driftd run` decides a window of these rows"
        if comparison.basis == "baseline"
        else "exact samples of both files"
    )
    columns = [
        Column("feature"),
        Column("method"),
        Column("score", right=True),
        Column("p-value", right=True),
        Column("threshold", right=True),
        Column(""),
    ]
    if wide:
        columns[1:1] = [Column("kind")]
        columns[5:5] = [Column("p corrected", right=True)]
        columns.append(Column("missing ref / cur", right=True))
    out = TextTable(
        columns,
        title=f"driftd compare: {comparison.current} vs {comparison.reference}",
        caption=(
            f"{len(comparison.drifted_features)} of {n_features} features drifted (share "
            f"{comparison.drift_share:.2f}; dataset drift at >= {comparison.drift_share_threshold:.2f}: "
            f"{'yes' if comparison.dataset_drift else 'no'}); p-values corrected with "
            f"{comparison.correction}, alpha {comparison.alpha}; {basis}."
        ),
    )
    for row in comparison.rows:
        r = row.result
        cells: list[Any] = [
            r.feature,
            r.method,
            fmt(r.score),
            fmt(r.p_value),
            fmt(r.threshold),
            _DRIFT if r.drifted else "ok",
        ]
        if wide:
            cells[1:1] = [row.kind]
            cells[5:5] = [fmt(row.corrected_p_value)]
            cells.append(f"{fmt(row.missing_reference, 3)} / {fmt(row.missing_current, 3)}")
        out.add_row(*cells)
    for r in comparison.multivariate:
        cells = [
            "(all numeric)",
            r.method,
            fmt(r.score),
            fmt(r.p_value),
            fmt(r.threshold),
            _DRIFT if r.drifted else "ok",
        ]
        if wide:
            cells[1:1] = ["multivariate"]
            cells[5:5] = ["—"]
            cells.append("—")
        out.add_row(*cells)
    return out
