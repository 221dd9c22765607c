"""Model page: drift heatmap (feature × time), performance, calibration and attribution over time."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboards.app import charts, queries
from dashboards.app.frames import (
    CALIBRATION_ORDER,
    PERFORMANCE_ORDER,
    calibration_frame,
    heatmap_bucket_seconds,
    heatmap_matrix,
    metric_frame,
    metric_names,
)
from dashboards.app.params import Route
from dashboards.app.views import alarms
from dashboards.app.views.common import EMPTY_STORE, fmt_time, navigate

RANGES = {
    "last 6 hours": timedelta(hours=6),
    "last 24 hours": timedelta(hours=24),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
}
FROM_LINK = "from the link"


def render(url: str, route: Route) -> None:
    names = queries.models(url)
    if not names:
        st.title("Models")
        st.info(EMPTY_STORE)
        return
    if route.model and route.model not in names:
        st.error(f"Model {route.model!r} has no results in the store (models: {', '.join(names)}).")
        return
    model = st.sidebar.selectbox(
        "Model", names, index=names.index(route.model) if route.model else 0, key="model_pick"
    )
    if model != route.model:
        st.query_params["model"] = model
    st.title(f"Model {model}")
    versions = queries.model_versions(url, model)
    if not versions:
        st.info(f"{model} has incidents but no closed window yet.")
        return
    if route.version and route.version not in versions:
        st.error(f"Model {model!r} has no version {route.version!r} (versions: "
                 f"{', '.join(versions)}).")
        return
    columns = st.columns(3)
    version = columns[0].selectbox(
        "Version", versions, index=versions.index(route.version) if route.version else 0,
        key="model_version",
    )
    options = ([FROM_LINK] if route.start or route.end else []) + list(RANGES)
    period = columns[1].selectbox("Time range", options, index=0 if route.start or route.end
                                  else 1, key="model_range")
    first, last = queries.time_bounds(url, model)
    if period == FROM_LINK:
        end = route.end or last
        start = route.start or end - RANGES["last 24 hours"]
    else:
        end = last
        start = end - RANGES[period]
    windows = queries.windows(url, model, version, None, start, end)
    if windows.empty:
        st.warning(f"No window of {model} {version} between {fmt_time(start)} and "
                   f"{fmt_time(end)} (data from {fmt_time(first)} to {fmt_time(last)}).")
        return
    segments = sorted(windows["segment"].unique())
    segment = columns[2].selectbox(
        "Segment", segments, index=segments.index("") if "" in segments else 0,
        format_func=lambda s: s or "(all segments)", key="model_segment",
    )
    windows = windows[windows["segment"] == segment].reset_index(drop=True)
    st.caption(f"{len(windows)} windows from {fmt_time(windows['window_start'].iloc[0])} to "
               f"{fmt_time(windows['window_end'].iloc[-1])}")

    first_start = windows["window_start"].iloc[0]
    last_end = windows["window_end"].iloc[-1]
    window_seconds = (windows["window_end"] - windows["window_start"]).dt.total_seconds().min()
    bucket = heatmap_bucket_seconds(first_start, last_end, window_seconds)
    matrix = heatmap_matrix(queries.drift_heatmap(
        url, model, version, segment, first_start.to_pydatetime(), last_end.to_pydatetime(),
        bucket,
    ))
    if matrix.empty:
        st.info("No feature results in this range.")
    else:
        width = f"{bucket // 60} min" if bucket < 7200 else f"{bucket / 3600:.1f} h"
        st.plotly_chart(charts.drift_heatmap(
            matrix, f"Drift by feature — {model} {version} (largest per {width})"),
            key="heatmap")
    perf, calib, attr, incidents_tab = st.tabs(
        ["Performance", "Calibration", "Attribution", "Incidents"]
    )
    with perf:
        metrics = metric_names(
            pd.concat([windows["performance"], windows["estimated_performance"]]),
            PERFORMANCE_ORDER,
        )
        if metrics:
            metric = st.selectbox("Metric", metrics, key="model_metric")
            st.plotly_chart(charts.metric_over_time(metric_frame(windows, metric), metric, metric),
                            key="model_performance")
        else:
            st.info("No performance yet: it appears as labels arrive.")
        alarms.render(url, model, version, segment, start, end)
    with calib:
        statistics = metric_names(windows["calibration"], CALIBRATION_ORDER)
        if statistics:
            statistic = st.selectbox("Statistic", statistics, key="model_calibration")
            st.plotly_chart(
                charts.metric_over_time(calibration_frame(windows, statistic), statistic,
                                        statistic),
                key="model_calibration_chart",
            )
        else:
            st.info("No calibration yet: it appears as labels arrive.")
    with attr:
        frame = pd.DataFrame(
            [{"window_start": w.window_start, "ndcg": w.attribution.get("ndcg"),
              "threshold": w.attribution.get("threshold")}
             for w in windows.itertuples() if isinstance(w.attribution, dict) and w.attribution]
        )
        if frame.empty:
            st.info("No attribution summaries in this range (explanations are off or sparse).")
        else:
            st.plotly_chart(charts.attribution_over_time(frame), key="model_attribution")
    with incidents_tab:
        related = queries.incidents(url, model=model, start=start, end=end, limit=50)
        if related.empty:
            st.caption("No incident in this range.")
        else:
            st.dataframe(related[["id", "alertname", "status", "severity", "feature",
                                  "starts_at", "ends_at"]], hide_index=True,
                         key="model_incidents")
            picked = st.selectbox("Incident", list(related["id"].astype(int)),
                                  key="model_incident_pick")
            if st.button("Investigate", key="model_open_incident"):
                navigate(incident=picked)
