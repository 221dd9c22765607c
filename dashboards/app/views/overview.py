"""Overview: what is wrong right now (from the store alone), model health and incidents.

The findings come from :func:`monitor.findings.find_problems` (the same rules as the
alerts, with the thresholds of driftd.yaml); this page only arranges them. The
findings table is HTML so that it wraps instead of being cut off, its rows link to
the investigation page, and out-of-threshold values are marked in the page itself.
"""

from __future__ import annotations

import html
import math

import pandas as pd
import streamlit as st

from dashboards.app import queries
from dashboards.app.frames import CALIBRATION_ORDER, PERFORMANCE_ORDER, primary
from dashboards.app.params import Route
from dashboards.app.views import retrain
from dashboards.app.views.common import EMPTY_STORE, fmt_time, navigate

ACTIVE = ("firing", "acknowledged")
STATUSES = ("firing", "acknowledged", "resolved")
COLOURS = {"critical": "#fde2e1", "warning": "#fff3cd"}
MARK = "#b00020"
# Model-health cells highlighted when a finding of this kind exists for the row's key.
HIGHLIGHT = {
    "drift": ("flagged",),
    "performance drop": ("realised",),
    "calibration": ("ECE",),
    "stale": ("last window",),
    "late events": ("late",),
}


def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def _shown(what: str, value: float, limit: bool = False) -> str:
    """A finding's value (or, with ``limit``, the limit it crossed) in the finding's unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if what == "stale":
        return f"{value:g} s" if limit else f"{value / 60:.0f} min"
    if what == "drift":
        return f"{value:.2f}× threshold"
    return f"{value:.3f}"


def findings_html(found: pd.DataFrame) -> str:
    """The findings as an HTML table: one row per finding, coloured by severity, linked."""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "severity",
            "what",
            "model",
            "segment",
            "about",
            "value",
            "limit",
            "since (UTC)",
            "detail",
            "",
        )
    )
    rows = []
    for f in found.itertuples(index=False):
        cells = [
            f"<b>{html.escape(f.severity)}</b>",
            html.escape(f.what),
            html.escape(" ".join(p for p in (f.model, f.version) if p)),
            html.escape(f.segment or "(all)"),
            html.escape(f.subject),
            f'<span class="driftd-out" style="color:{MARK};font-weight:bold">{html.escape(_shown(f.what, f.value))}</span>',
            html.escape(_shown(f.what, f.limit, limit=True)),
            html.escape(fmt_time(f.since).replace(" UTC", "")),
            html.escape(f.detail),
            f'<a href="{html.escape(f.link)}" target="_self">open</a>',
        ]
        colour = COLOURS.get(f.severity, "#eef")
        rows.append(
            f'<tr class="driftd-finding driftd-{html.escape(f.severity)}" style="background:{colour}">'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    return (
        '<table class="driftd-findings" style="width:100%;table-layout:auto;font-size:0.9em">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _rules_caption() -> str:
    settings = queries.settings()
    alerts = settings.alerts
    return (
        f"Rules (driftd.yaml): features flagged by their method's threshold and corrected p-value; "
        f"critical at drift share ≥ {settings.drift.drift_share_threshold:g}; performance worse than the "
        f"baseline by more than {alerts.performance_tolerance:.0%} beyond its 95 % interval; ECE more than "
        f"{alerts.ece_increase:g} above the baseline's; stale after {settings.stale_window_seconds:g} s "
        f"without a closed window; late events above {alerts.late_ratio:.0%} of a window. Alerts from "
        "Alertmanager are listed when it delivers them."
    )


def _health_table(health: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    # Where performance dropped, the metric that dropped is shown.
    dropped = {
        (f.model, f.version, f.segment): f.subject
        for f in found.itertuples(index=False)
        if f.what == "performance drop"
    }
    rows = []
    for item in health.itertuples(index=False):
        realised_map = _map(item.labelled_performance)
        order = (dropped.get((item.model, item.version, item.segment), ""), *PERFORMANCE_ORDER)
        metric, realised = primary(realised_map or _map(item.estimated_performance), order)
        if not realised_map:
            realised = float("nan")
        _, baseline = primary({metric: _map(item.labelled_baseline_performance).get(metric)}, ())
        statistic, calibration = primary(_map(item.labelled_calibration), CALIBRATION_ORDER)
        _, calibration_base = primary(
            {statistic: _map(item.labelled_baseline_calibration).get(statistic)}, ()
        )
        total = item.n_events + item.n_late
        rows.append(
            {
                "model": f"{item.model} {item.version}",
                "segment": item.segment or "(all)",
                "last window": item.window_start,
                "events": item.n_events,
                "drift share": item.drift_share,
                "flagged": item.n_drifted_features,
                "metric": metric or "—",
                "realised": realised,
                "baseline": baseline,
                "ECE": calibration,
                "ECE base": calibration_base,
                "late": item.n_late / total if total else 0.0,
                "labelled": item.label_coverage,
                "_key": (item.model, item.version, item.segment),
            }
        )
    return pd.DataFrame(rows)


def _styled(table: pd.DataFrame, found: pd.DataFrame):
    marked: dict[tuple, set[str]] = {}
    for f in found.itertuples(index=False):
        cells = marked.setdefault((f.model, f.version, f.segment), set())
        cells.update(HIGHLIGHT.get(f.what, ()))
        if f.what == "drift" and f.severity == "critical":  # the drift share passed its threshold
            cells.add("drift share")
    keys = list(table.pop("_key"))

    def style(row: pd.Series) -> list[str]:
        cells = marked.get(keys[row.name], set())
        return [
            f"background-color: {COLOURS['critical']}; color: {MARK}; font-weight: bold"
            if c in cells
            else ""
            for c in row.index
        ]

    return table.style.apply(style, axis=1).format(
        {
            "drift share": "{:.2f}",
            "realised": "{:.3f}",
            "baseline": "{:.3f}",
            "ECE": "{:.3f}",
            "ECE base": "{:.3f}",
            "late": "{:.1%}",
            "labelled": "{:.0%}",
            "last window": lambda t: pd.Timestamp(t).strftime("%m-%d %H:%M"),
        },
        na_rep="—",
    )


def _findings(found: pd.DataFrame) -> None:
    st.subheader("What is wrong right now")
    if found.empty:
        st.success(
            "Nothing is wrong right now: no flagged feature, no performance or calibration "
            "beyond its threshold, no stale or late-heavy stream, no open alert."
        )
    else:
        st.markdown(findings_html(found), unsafe_allow_html=True)
        labels = {
            i: f"{f.severity} · {f.what} · {f.model} {f.segment} · {f.subject}"
            for i, f in enumerate(found.itertuples(index=False))
        }
        choice, button = st.columns([3, 1])
        picked = choice.selectbox(
            "Finding", list(labels), format_func=labels.get, key="overview_finding"
        )
        if button.button("Investigate", key="open_finding"):
            navigate(**_params(found.iloc[picked]["link"]))
    st.caption(_rules_caption())


def _params(link: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(link.lstrip("?"), keep_blank_values=True))


def _incident_table(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": frame["id"],
            "alert": frame["alertname"],
            "status": frame["status"],
            "severity": frame["severity"],
            "model": frame["model"],
            "version": frame["version"],
            "feature": frame["feature"],
            "started (UTC)": frame["starts_at"],
            "ended (UTC)": frame["ends_at"],
        }
    )


def render(url: str, route: Route) -> None:
    st.title("driftd — overview")
    status = queries.store_status(url)
    if status["windows"] == 0 and status["incidents"] == 0:
        st.info(EMPTY_STORE)
        return
    health = queries.model_health(url)
    found = queries.findings(url)
    firing = queries.incidents(url, status=ACTIVE)
    columns = st.columns(5)
    columns[0].metric("Wrong now", len(found), help="findings below, Alertmanager alerts included")
    columns[1].metric("Critical", int((found["severity"] == "critical").sum()) if len(found) else 0)
    columns[2].metric("Models", health["model"].nunique() if len(health) else 0)
    columns[3].metric("Open incidents", len(firing))
    newest = status["latest"]
    columns[4].metric(
        "Newest window (UTC)",
        newest.strftime("%m-%d %H:%M") if newest else "—",
        help=fmt_time(newest),
    )
    _findings(found)

    st.subheader("Model health")
    st.caption(
        "Drift from the newest window (times UTC); realised performance and calibration from the "
        "newest window with labels (labels arrive later); `labelled` is the share of the last 24 h with labels. Marked cells are beyond "
        "their threshold."
    )
    if health.empty:
        st.info("No window has closed yet; incidents are listed below.")
    else:
        st.dataframe(
            _styled(_health_table(health, found), found), hide_index=True, key="model_health"
        )
        names = sorted(health["model"].unique())
        choice, button = st.columns([3, 1])
        model = choice.selectbox("Model", names, key="overview_model")
        if button.button("Open model page", key="open_model"):
            navigate(page="model", model=model)

    st.subheader("Open incidents")
    if firing.empty:
        st.success("No incident is firing or acknowledged (incidents come from Alertmanager).")
    else:
        st.dataframe(_incident_table(firing), hide_index=True, key="open_incidents")

    retrain.render(url)

    st.subheader("Recent incidents")
    shown = st.multiselect("Status", STATUSES, default=list(STATUSES), key="overview_status")
    recent = queries.incidents(url, status=tuple(shown) if shown else None, limit=50)
    if recent.empty:
        st.caption("No incident with this status.")
        return
    st.dataframe(_incident_table(recent), hide_index=True, key="recent_incidents")
    labels = {
        int(
            r.id
        ): f"#{r.id} {r.alertname} — {r.model or 'pipeline'} ({r.status}, {fmt_time(r.starts_at)})"
        for r in recent.itertuples()
    }
    choice, button = st.columns([3, 1])
    picked = choice.selectbox(
        "Incident", list(labels), format_func=labels.get, key="overview_incident"
    )
    if button.button("Investigate", key="open_incident"):
        navigate(incident=picked)
