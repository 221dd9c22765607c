"""The Overview dashboard: every model at a glance, and where to click next.

Window gauges are exported by every daemon that closed a window for a key, so the
queries take ``max``/``min`` over instances rather than summing duplicates.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import units

from dashboards import panels as p
from dashboards.context import DashboardContext
from dashboards.uids import MODEL_UID, OVERVIEW_UID, TAGS, dashboard_url

__all__ = ["overview_dashboard"]

RATE = "$__rate_interval"
# Per daemon and topic, as DriftdConsumerLagHigh compares it.
LAG_BY_TOPIC = "sum by (job, instance, topic) (driftd_consumer_lag)"


def overview_dashboard(ctx: DashboardContext) -> dash.Dashboard:
    """All models: drift share, traffic, label coverage, firing alerts, consumer lag."""
    t = ctx.thresholds
    to_model = p.link(
        "Model dashboard: ${__field.labels.model} ${__field.labels.version}",
        dashboard_url(MODEL_UID, "var-model=${__field.labels.model}",
                      "var-version=${__field.labels.version}"),
        new_tab=False,
    )
    to_app = p.link(
        "Investigate ${__field.labels.model} in the app",
        ctx.links.app("${__field.labels.model:percentencode}",
                      "${__field.labels.version:percentencode}"),
    )
    to_model_row = p.link(
        "Model dashboard: ${__data.fields.model}",
        dashboard_url(MODEL_UID, "var-model=${__data.fields.model}",
                      "var-version=${__data.fields.version}"),
        new_tab=False,
    )
    to_app_row = p.link(
        "Investigate ${__data.fields.model} in the app",
        ctx.links.app("${__data.fields.model:percentencode}", "${__data.fields.version:percentencode}",
                      segment="${__data.fields.segment:percentencode}"),
    )
    drift_runbook = p.link("Runbook: model drift", ctx.links.runbook("DriftdModelDrift"))

    return (
        dash.Dashboard("driftd / Overview")
        .uid(OVERVIEW_UID)
        .description("Every monitored model: drift share, traffic, label coverage, alerts, lag.")
        .tags(list(TAGS))
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(dash.dashboard.DashboardCursorSync.CROSSHAIR)
        .link(dash.DashboardLink("driftd").type(dash.dashboard.DashboardLinkType.DASHBOARDS)
              .tags([TAGS[0]]).as_dropdown(True).keep_time(True).include_vars(False))
        .with_variable(p.datasource_variable())
        .with_row(dash.Row("Now"))
        .with_panel(p.stat(
            "Models reporting",
            "Models with at least one closed window exported by driftd.",
            p.query("count(count by (model) (driftd_window_events))", instant=True),
            unit=units.Short,
        ))
        .with_panel(p.stat(
            "Models drifted",
            "Models whose share of drifted features reached the drift-share threshold "
            "in their last closed window.",
            p.query("sum(max by (model) (driftd_model_drifted))", instant=True),
            unit=units.Short, thresholds=p.above(1), links=[drift_runbook],
        ))
        .with_panel(p.stat(
            "Firing alerts",
            "driftd alerts currently firing in Prometheus.",
            p.query('count(ALERTS{alertstate="firing", alertname=~"Driftd.*"})', instant=True),
            unit=units.Short, thresholds=p.above(1), no_value="0",
        ))
        .with_panel(p.stat(
            "Events/s",
            "Prediction events accepted into windows, all models.",
            p.query(f"sum(rate(driftd_events_total[{RATE}]))"),
            unit=units.EventsPerSecond,
        ))
        .with_panel(p.stat(
            "Label coverage (worst model)",
            "Lowest share of a window's predictions whose label has arrived.",
            p.query("min(driftd_label_coverage_ratio)"),
            unit=units.PercentUnit,
        ))
        .with_panel(p.stat(
            "Consumer lag (worst topic)",
            "Messages behind the end of a topic for the daemon furthest behind; the alert "
            f"fires above {t.consumer_lag:g}.",
            p.query(f"max({LAG_BY_TOPIC})"),
            unit=units.Short, thresholds=p.above(t.consumer_lag),
            links=[p.link("Runbook: consumer lag", ctx.links.runbook("DriftdConsumerLagHigh"))],
        ))
        .with_row(dash.Row("Drift by model"))
        .with_panel(p.timeseries(
            "Drift share by model",
            "Share of each model's features that drifted in its last closed window. The "
            f"dashed line is the model-level drift threshold ({t.drift_share:g}).",
            [p.query("max by (model, version) (driftd_model_drift_share_ratio)",
                     "{{model}} {{version}}")],
            unit=units.PercentUnit, min_value=0, max_value=1,
            thresholds=p.above(t.drift_share), data_links=[to_model, to_app], links=[drift_runbook],
        ))
        .with_panel(p.table(
            "Models now",
            "Last closed window of each model, version and segment; click a model to open it.",
            [
                p.query("max by (model, version, segment) (driftd_model_drift_share_ratio)",
                        ref_id="A", instant=True, table=True),
                p.query("max by (model, version, segment) (driftd_model_drift_score)",
                        ref_id="B", instant=True, table=True),
                p.query("max by (model, version, segment) (driftd_window_events)",
                        ref_id="C", instant=True, table=True),
                p.query("min by (model, version, segment) (driftd_label_coverage_ratio)",
                        ref_id="D", instant=True, table=True),
            ],
            unit=units.PercentUnit,
            transformations=p.merge_and_rename({
                "model": "model", "version": "version", "segment": "segment",
                "Value #A": "drift share", "Value #B": "weighted drift",
                "Value #C": "events", "Value #D": "label coverage",
            }),
            sort_by="drift share",
            thresholds=p.above(t.drift_share),
            column_units={"events": units.Short, "weighted drift": units.PercentUnit},
            coloured=["drift share"],
            data_links=[to_model_row, to_app_row],
        ))
        .with_row(dash.Row("Traffic and labels"))
        .with_panel(p.timeseries(
            "Events/s by model",
            "Prediction events accepted into windows.",
            [p.query(f"sum by (model) (rate(driftd_events_total[{RATE}]))", "{{model}}")],
            unit=units.EventsPerSecond, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Label coverage by model",
            "Share of the last window's predictions whose label has arrived; labels may "
            "arrive minutes to days after the prediction.",
            [p.query("min by (model, version) (driftd_label_coverage_ratio)",
                     "{{model}} {{version}}")],
            unit=units.PercentUnit, min_value=0, max_value=1, data_links=[to_model, to_app],
        ))
        .with_row(dash.Row("Alerts and lag"))
        .with_panel(p.table(
            "Firing alerts",
            "driftd alerts firing now; the runbook link explains each one.",
            [p.query('max by (alertname, severity, model, version) '
                     '(ALERTS{alertstate="firing", alertname=~"Driftd.*"})',
                     instant=True, table=True)],
            unit=units.Short,
            transformations=p.merge_and_rename(
                {"alertname": "alert", "severity": "severity", "model": "model",
                 "version": "version"},
                hidden=("Time", "Value"),
            ),
            data_links=[p.link("Runbook: ${__data.fields.alert}",
                               ctx.links.runbook("${__data.fields.alert}"))],
            no_value="no driftd alert firing",
        ))
        .with_panel(p.timeseries(
            "Consumer lag by topic",
            "Messages behind the end of each topic, per daemon (summed over its partitions).",
            [p.query(LAG_BY_TOPIC, "{{topic}} {{instance}}")],
            unit=units.Short, min_value=0, thresholds=p.above(t.consumer_lag),
        ))
    )
