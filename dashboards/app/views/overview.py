"""Overview: model health and incidents, with links to the other pages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.app import queries
from dashboards.app.frames import CALIBRATION_ORDER, PERFORMANCE_ORDER, primary
from dashboards.app.params import Route
from dashboards.app.views.common import EMPTY_STORE, fmt_time, navigate

ACTIVE = ("firing", "acknowledged")
STATUSES = ("firing", "acknowledged", "resolved")


def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def _health_table(health: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for item in health.itertuples(index=False):
        realised_map = _map(item.labelled_performance)
        metric, realised = primary(realised_map or _map(item.estimated_performance),
                                   PERFORMANCE_ORDER)
        if not realised_map:
            realised = float("nan")
        _, estimated = primary({metric: _map(item.estimated_performance).get(metric)}, ())
        _, baseline = primary({metric: _map(item.labelled_baseline_performance).get(metric)}, ())
        statistic, calibration = primary(_map(item.labelled_calibration), CALIBRATION_ORDER)
        rows.append(
            {
                "model": item.model,
                "version": item.version,
                "segment": item.segment or "(all)",
                "last window (UTC)": item.window_start,
                "events": item.n_events,
                "drift share": item.drift_share,
                "drifted": bool(item.model_drifted),
                "metric": metric or "—",
                "realised": realised,
                "estimated": estimated,
                "baseline": baseline,
                "calibration": statistic or "—",
                "calibration value": calibration,
                "labelled window (UTC)": item.labelled_window_start,
                "label coverage (24 h)": item.label_coverage,
            }
        )
    return pd.DataFrame(rows)


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
    firing = queries.incidents(url, status=ACTIVE)
    left, middle, right, last = st.columns(4)
    left.metric("Models", health["model"].nunique() if len(health) else 0)
    middle.metric("Drifting now", int(health["model_drifted"].sum()) if len(health) else 0)
    right.metric("Open incidents", len(firing))
    newest = status["latest"]
    last.metric("Newest window (UTC)", newest.strftime("%m-%d %H:%M") if newest else "—",
                help=fmt_time(newest))

    st.subheader("Model health")
    st.caption("Drift from the newest window; realised performance and calibration from the "
               "newest window with labels (labels arrive later); estimated performance needs "
               "no labels.")
    if health.empty:
        st.info("No window has closed yet; incidents are listed below.")
    else:
        st.dataframe(
            _health_table(health),
            hide_index=True,
            column_config={
                "drift share": st.column_config.ProgressColumn(
                    "drift share", help="share of features that drifted", min_value=0.0,
                    max_value=1.0, format="%.2f",
                ),
                "label coverage (24 h)": st.column_config.NumberColumn(format="%.2f"),
                "realised": st.column_config.NumberColumn(format="%.3f"),
                "estimated": st.column_config.NumberColumn(format="%.3f"),
                "baseline": st.column_config.NumberColumn(format="%.3f"),
                "calibration value": st.column_config.NumberColumn(format="%.4f"),
            },
        )
        names = sorted(health["model"].unique())
        choice, button = st.columns([3, 1])
        model = choice.selectbox("Model", names, key="overview_model")
        if button.button("Open model page", key="open_model"):
            navigate(page="model", model=model)

    st.subheader("Open incidents")
    if firing.empty:
        st.success("No incident is firing or acknowledged.")
    else:
        st.dataframe(_incident_table(firing), hide_index=True, key="open_incidents")

    st.subheader("Recent incidents")
    shown = st.multiselect("Status", STATUSES, default=list(STATUSES), key="overview_status")
    recent = queries.incidents(url, status=tuple(shown) if shown else None, limit=50)
    if recent.empty:
        st.caption("No incident with this status.")
        return
    st.dataframe(_incident_table(recent), hide_index=True, key="recent_incidents")
    labels = {
        int(r.id): f"#{r.id} {r.alertname} — {r.model or 'pipeline'} ({r.status}, "
        f"{fmt_time(r.starts_at)})"
        for r in recent.itertuples()
    }
    choice, button = st.columns([3, 1])
    picked = choice.selectbox("Incident", list(labels), format_func=labels.get,
                              key="overview_incident")
    if button.button("Investigate", key="open_incident"):
        navigate(incident=picked)
