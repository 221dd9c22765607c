"""The sections of the incident page for one scope (model, version, segment, times)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from dashboards.app import charts, queries
from dashboards.app.frames import (
    CALIBRATION_ORDER,
    PERFORMANCE_ORDER,
    PSEUDO_FEATURES,
    calibration_frame,
    metric_frame,
    metric_names,
    rank_features,
    summed_counts,
)
from dashboards.app.views import alarms
from dashboards.app.views.common import fmt_number, fmt_time, navigate, time_param

if TYPE_CHECKING:
    from dashboards.app.views.incident import Scope

PSEUDO = PSEUDO_FEATURES


def _choose(label: str, options: list[str], preferred: str | None, key: str) -> str:
    index = options.index(preferred) if preferred in options else 0
    if len(options) == 1:
        return options[0]
    return st.selectbox(label, options, index=index, key=key,
                        format_func=lambda s: s if s else "(all segments)")


def render(url: str, scope: Scope, open_incident: bool) -> None:
    versions = queries.model_versions(url, scope.model)
    if not versions:
        st.info(f"{scope.model} has no closed window in the store yet.")
        return
    if scope.version is not None and scope.version not in versions:
        st.error(f"Model {scope.model!r} has no version {scope.version!r} in the store "
                 f"(versions: {', '.join(versions)}).")
        return
    version = _choose("Version", versions, scope.version, "incident_version")
    windows = queries.windows(url, scope.model, version, None, scope.context_start,
                              scope.context_end)
    if windows.empty:
        st.warning(f"No window of {scope.model} {version} starts between "
                   f"{fmt_time(scope.context_start)} and {fmt_time(scope.context_end)}; "
                   "the daemon may not have closed one yet.")
        return
    segments = sorted(windows["segment"].unique())
    preferred = scope.segment if scope.segment in segments else ("" if "" in segments else None)
    segment = _choose("Segment", segments, preferred, "incident_segment")
    windows = windows[windows["segment"] == segment].reset_index(drop=True)
    results = queries.feature_results(url, scope.model, version, segment, scope.context_start,
                                      scope.context_end)
    start, end = pd.Timestamp(scope.involved_from), pd.Timestamp(scope.end)
    involved = windows[(windows["window_end"] > start) & (windows["window_start"] < end)]
    if involved.empty:
        involved = windows.tail(1)
    inv_results = results[results["window_id"].isin(involved["id"])]
    profile = queries.baseline_profile(url, scope.model, version) or {}
    # Shade the windows that led to the alert, not only its firing time; a range link
    # without an incident gets no band (nothing fired there).
    span = (scope.involved_from, scope.end) if open_incident else None

    _windows_summary(involved, windows, span, inv_results, scope.feature)
    drift, pred, perf, attr, samples = st.tabs(
        ["Feature drift", "Prediction & label", "Performance & calibration", "Attribution",
         "Predictions & SHAP"]
    )
    with drift:
        _feature_drift(scope, results, inv_results, involved, profile, span)
    with pred:
        _prediction_label(results, inv_results, profile, span)
    with perf:
        _performance(windows, involved, span)
        alarms.render(url, scope.model, version, segment, scope.context_start, scope.context_end)
    with attr:
        _attribution(windows, involved, profile, span)
    with samples:
        _samples(url, scope, version, involved)
    if not open_incident:
        _related_incidents(url, scope)


def _windows_summary(involved: pd.DataFrame, windows: pd.DataFrame, span: tuple | None,
                     inv_results: pd.DataFrame, feature: str | None) -> None:
    st.subheader(f"Windows involved ({len(involved)})")
    columns = st.columns(5 if feature else 4)
    columns[0].metric("Events", f"{int(involved['n_events'].sum()):,}")
    columns[1].metric("Labels", f"{int(involved['n_labels'].sum()):,}")
    columns[2].metric("Max drift share", fmt_number(involved["drift_share"].max(), 2))
    columns[3].metric("Dataset drifted", f"{int(involved['model_drifted'].sum())} / {len(involved)}",
                      help="windows involved whose share of drifted features reached drift.drift_share_threshold")
    if feature:
        rows = inv_results[inv_results["feature"] == feature]
        drifted = int(rows.groupby("window_id")["drifted"].any().sum()) if len(rows) else 0
        columns[4].metric(f"{PSEUDO.get(feature, feature)} drifted", f"{drifted} / {len(involved)}",
                          help=f"windows involved in which {PSEUDO.get(feature, feature)} was flagged")
    frame = pd.DataFrame({"window_start": windows["window_start"], "value": windows["drift_share"]})
    st.plotly_chart(
        charts.metric_over_time(frame, "drift share", "Share of drifted features", span,
                                unit="fraction of features"),
        key="drift_share_chart",
    )
    st.dataframe(
        involved[["window_start", "window_end", "n_events", "n_labels", "drift_share",
                  "drift_score", "model_drifted"]].rename(
            columns={"window_start": "start (UTC)", "window_end": "end (UTC)",
                     "n_events": "events", "n_labels": "labels", "drift_share": "drift share",
                     "drift_score": "drift score", "model_drifted": "model drifted"}),
        hide_index=True, key="windows_involved",
    )


def _feature_drift(scope: Scope, results: pd.DataFrame, inv_results: pd.DataFrame,
                   involved: pd.DataFrame, profile: dict[str, Any], span: tuple | None) -> None:
    ranking = rank_features(inv_results, profile.get("importances"), involved["attribution"], first=scope.feature)
    if ranking.empty:
        st.info("No feature results in these windows (too few events to test, or the "
                "windows closed before any feature was profiled).")
        return
    st.subheader("Features ranked: drifted windows first, then drift × importance")
    source = ranking.attrs.get("importance_source")
    alerted = (f"The alerted feature ({scope.feature}) comes first. " if scope.feature in set(ranking["feature"])
               else "")
    weighting = (f"importance = share of the model's total importance, from {source}."
                 if source else "No explanations for this model (no SHAP importances in its baseline and no "
                 "explained predictions in these windows): features are ranked by drift alone. Give the "
                 "model a `model_file` to weigh drift by importance.")
    st.caption(f"{alerted}Then features by the number of windows in which they drifted, then by drift ratio × "
               f"importance; drift ratio = largest score / threshold over the windows (≥ 1 crossed the "
               f"threshold); {weighting}")
    st.dataframe(ranking, hide_index=True, key="feature_ranking")
    features = list(ranking["feature"])
    if scope.feature and scope.feature not in features:
        st.warning(f"Feature {scope.feature!r} has no results in these windows; "
                   "showing the top-ranked feature instead.")
    feature = st.selectbox("Feature", features,
                           index=features.index(scope.feature) if scope.feature in features else 0,
                           key="incident_feature")
    _feature_detail(feature, results, inv_results, profile.get("features", {}).get(feature), span)


def _feature_detail(feature: str, results: pd.DataFrame, inv_results: pd.DataFrame,
                    feature_profile: dict[str, Any] | None, span: tuple | None) -> None:
    rows = inv_results[inv_results["feature"] == feature]
    if rows.empty:
        st.info(f"No results for {PSEUDO.get(feature, feature)} in the windows involved "
                "(labels arrive later); its timeline around them:")
        st.plotly_chart(charts.drift_timeline(results, feature, span), key=f"timeline_{feature}")
        return
    worst = rows.loc[rows["score"].astype(float).idxmax()] if rows["score"].notna().any() \
        else rows.iloc[-1]
    st.markdown(f"#### {PSEUDO.get(feature, feature)}")
    columns = st.columns(5)
    columns[0].metric(f"{worst['method']} (worst window)", fmt_number(worst["score"], 4))
    columns[1].metric("Threshold", fmt_number(worst["threshold"], 4))
    columns[2].metric("p-value", fmt_number(worst["p_value"], 4))
    columns[3].metric("Missing ratio", fmt_number(rows["missing_ratio"].max(), 3))
    columns[4].metric("Unseen ratio", fmt_number(rows["unseen_ratio"].max(), 3))
    st.plotly_chart(charts.drift_timeline(results, feature, span), key=f"timeline_{feature}")
    if feature_profile:
        st.plotly_chart(
            charts.distribution(feature_profile, summed_counts(inv_results, feature),
                                PSEUDO.get(feature, feature),
                                f"{worst['method']} {fmt_number(worst['score'], 4)} vs threshold "
                                f"{fmt_number(worst['threshold'], 4)}"),
            key=f"distribution_{feature}",
        )
    else:
        st.caption("No baseline profile stored for this feature, so no distribution to compare.")


def _prediction_label(results: pd.DataFrame, inv_results: pd.DataFrame,
                      profile: dict[str, Any], span: tuple | None) -> None:
    shown = False
    for pseudo, name in PSEUDO.items():
        if (results["feature"] == pseudo).any():
            shown = True
            _feature_detail(pseudo, results, inv_results, profile.get(name), span)
    if not shown:
        st.info("No prediction or label drift results in these windows (labels may not "
                "have arrived yet).")


def _performance(windows: pd.DataFrame, involved: pd.DataFrame, span: tuple | None) -> None:
    metrics = metric_names(pd.concat([windows["performance"], windows["estimated_performance"]]),
                           PERFORMANCE_ORDER)
    if metrics:
        metric = st.selectbox("Performance metric", metrics, key="incident_metric")
        st.plotly_chart(charts.metric_over_time(metric_frame(windows, metric), metric,
                                                metric, span), key="performance_chart")
    else:
        st.info("No performance yet: it appears when labels for these windows arrive.")
    statistics = metric_names(windows["calibration"], CALIBRATION_ORDER)
    if statistics:
        statistic = st.selectbox("Calibration statistic", statistics, key="incident_calibration")
        st.plotly_chart(charts.metric_over_time(calibration_frame(windows, statistic), statistic,
                                                statistic, span), key="calibration_chart")
    curves = [c.get("reliability_curve") for c in involved["calibration"]
              if isinstance(c, dict) and c.get("reliability_curve")]
    if curves:
        st.plotly_chart(charts.reliability_diagram(curves[-1]), key="reliability_chart")
        st.caption("Reliability curve of the last involved window with labels.")


def _attribution(windows: pd.DataFrame, involved: pd.DataFrame, profile: dict[str, Any],
                 span: tuple | None) -> None:
    summaries = [a for a in involved["attribution"] if isinstance(a, dict) and a]
    if not summaries:
        st.info("No attribution summary for these windows: explanations are sampled in the "
                "background (`explain.enabled`), or not enough were computed yet.")
        return
    window_shap = pd.DataFrame([a.get("mean_abs_shap") or {} for a in summaries]).mean().to_dict()
    st.plotly_chart(charts.attribution_ranking(profile.get("importances") or {}, window_shap),
                    key="attribution_ranking")
    frame = pd.DataFrame(
        [{"window_start": w.window_start, "ndcg": w.attribution.get("ndcg"),
          "threshold": w.attribution.get("threshold")}
         for w in windows.itertuples() if isinstance(w.attribution, dict) and w.attribution]
    )
    st.plotly_chart(charts.attribution_over_time(frame, span), key="attribution_time")


def _samples(url: str, scope: Scope, version: str, involved: pd.DataFrame) -> None:
    search = st.text_input("Search by prediction id (prefix)", key="prediction_search").strip()
    start = involved["window_start"].min().to_pydatetime()
    end = involved["window_end"].max().to_pydatetime()
    rows = queries.explanations(url, scope.model, version, start, end, search)
    if rows.empty:
        st.info(f"No explained prediction matches {search!r}." if search else
                "No explained prediction in these windows (explanations are sampled).")
        return
    st.dataframe(rows.drop(columns=["id"]), hide_index=True, key="explanations_table")
    labels = dict(zip(rows["id"].astype(int), rows["prediction_id"]))
    picked = st.selectbox("Prediction", list(labels), format_func=labels.get,
                          key="explanation_pick")
    detail = queries.explanation(url, int(picked))
    if detail:
        st.caption(f"prediction {detail['prediction']:.4g} = base value "
                   f"{detail['base_value']:.4g} + sum of SHAP values ({detail['explainer']})")
        st.plotly_chart(charts.shap_bars(detail["shap_values"] or {}, detail["features"] or {}),
                        key="shap_chart")


def _related_incidents(url: str, scope: Scope) -> None:
    related = queries.incidents(url, model=scope.model, start=scope.start, end=scope.end, limit=20)
    st.subheader("Incidents of this model in the range")
    if related.empty:
        st.caption("None.")
        return
    labels = {int(r.id): f"#{r.id} {r.alertname} ({r.status}, {fmt_time(r.starts_at)})"
              for r in related.itertuples()}
    picked = st.selectbox("Incident", list(labels), format_func=labels.get,
                          key="related_incident")
    if st.button("Open incident", key="open_related"):
        navigate(incident=picked)
    st.caption(f"Range link: ?model={scope.model}&from={time_param(scope.start)}"
               f"&to={time_param(scope.end)}")
