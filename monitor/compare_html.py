"""Self-contained HTML report of ``driftd compare``: verdicts plus reference-vs-current histograms.

Histograms are inline SVG drawn from the reference bins (no JavaScript, no CDN,
no network): open the file anywhere, attach it to a ticket.
"""

from __future__ import annotations

import html
import itertools
import math

import numpy as np

from monitor.baseline import FeatureProfile

__all__ = ["bin_labels", "histogram_svg", "render_html"]

_REFERENCE, _CURRENT = "#4c78a8", "#f58518"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child,td.l,th.l{text-align:left}.drift{color:#c62828;font-weight:bold}.ok{color:#2e7d32}
section{margin:2rem 0;border-top:1px solid #ccc}.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
svg text{font-size:10px;fill:#333}
"""


def bin_labels(profile: FeatureProfile) -> list[str]:
    """Human labels of the profile's bins, in bin order."""
    if profile.kind == "categorical":
        return [*profile.categories, "(other known)", "(unseen)"]
    edges = [f"{e:.4g}" for e in profile.edges]
    if not edges:
        return ["all values"]
    return [f"< {edges[0]}", *(f"[{a}, {b})" for a, b in itertools.pairwise(edges)), f">= {edges[-1]}"]


def histogram_svg(labels: list[str], reference: np.ndarray, current: np.ndarray, width: int = 760) -> str:
    """Grouped bars of reference and current shares per bin as an inline SVG element."""
    ref_total, cur_total = float(np.sum(reference)), float(np.sum(current))
    ref = np.asarray(reference, dtype=float) / ref_total if ref_total > 0 else np.zeros(len(labels))
    cur = np.asarray(current, dtype=float) / cur_total if cur_total > 0 else np.zeros(len(labels))
    height, top, bottom, left = 220, 10, 70, 40
    plot_height = height - top - bottom
    peak = max(float(ref.max(initial=0)), float(cur.max(initial=0)), 1e-12)
    slot = (width - left) / max(len(labels), 1)
    bar = slot * 0.38
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_height * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{tick * peak:.0%}</text>')
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.1
        for offset, share, colour, name in ((0.0, ref[i], _REFERENCE, "reference"), (bar, cur[i], _CURRENT, "current")):
            h = plot_height * share / peak
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{top + plot_height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{html.escape(label)} {name}: {share:.2%}</title></rect>'
            )
        cx, cy = x + bar, top + plot_height + 12
        parts.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" transform="rotate(-35 {cx:.1f} {cy:.1f})">'
            f"{html.escape(label[:24])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "inf"
    return f"{value:.4g}"


def render_html(comparison) -> str:
    """The whole report as one HTML document."""
    verdict = '<span class="drift">DRIFT</span>', '<span class="ok">ok</span>'
    rows = []
    for row in comparison.rows:
        r = row.result
        rows.append(
            f'<tr><td><a href="#f-{html.escape(r.feature)}">{html.escape(r.feature)}</a></td><td class="l">{row.kind}</td>'
            f'<td class="l">{r.method}</td><td>{_cell(r.score)}</td><td>{_cell(r.p_value)}</td>'
            f"<td>{_cell(row.corrected_p_value)}</td><td>{_cell(r.threshold)}</td>"
            f"<td class=\"l\">{verdict[0] if r.drifted else verdict[1]}</td></tr>"
        )
    for r in comparison.multivariate:
        rows.append(
            f'<tr><td>(all numeric)</td><td class="l">multivariate</td><td class="l">{r.method}</td>'
            f"<td>{_cell(r.score)}</td><td>{_cell(r.p_value)}</td><td>—</td><td>{_cell(r.threshold)}</td>"
            f"<td class=\"l\">{verdict[0] if r.drifted else verdict[1]}</td></tr>"
        )
    sections = []
    for name, profile in comparison.profiles.items():
        verdicts = [row for row in comparison.rows if row.result.feature == name]
        status = " ".join(
            f"{row.result.method} {_cell(row.result.score)} {verdict[0] if row.result.drifted else verdict[1]}"
            for row in verdicts
        )
        sections.append(
            f'<section id="f-{html.escape(name)}"><h3>{html.escape(name)} <small>({profile.kind})</small></h3>'
            f"<p>{status}</p>"
            + histogram_svg(bin_labels(profile), profile.counts, comparison.current_counts[name])
            + "</section>"
        )
    n_features = sum(1 for n in comparison.profiles if not n.startswith("__"))
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>driftd compare</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>driftd compare</h1><p>reference <code>{html.escape(comparison.reference)}</code> "
        f"({comparison.reference_rows} rows) vs current <code>{html.escape(comparison.current)}</code> "
        f"({comparison.current_rows} rows)</p>"
        f"<p><b>{len(comparison.drifted_features)}</b> of {n_features} features drifted "
        f"(share {comparison.drift_share:.2f}; dataset drift: {'yes' if comparison.dataset_drift else 'no'}). "
        f"p-values corrected with {comparison.correction} at alpha {comparison.alpha}.</p>"
        '<table><tr><th>feature</th><th class="l">kind</th><th class="l">method</th><th>score</th><th>p-value</th>'
        '<th>corrected p</th><th>threshold</th><th class="l">decision</th></tr>'
        + "".join(rows)
        + "</table>"
        f'<p class="legend"><span style="background:{_REFERENCE}"></span>reference'
        f'<span style="background:{_CURRENT}"></span>current (share of non-missing values per reference bin)</p>'
        + "".join(sections)
        + "</body></html>"
    )
