"""The Pipeline dashboard: is driftd itself healthy?

Throughput, bad and late input, consumer lag, window closing, the explanation
queue and the store, per daemon instance (``$instance``).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as dash_models
from grafana_foundation_sdk.models import units

from dashboards import panels as p
from dashboards.context import DashboardContext
from dashboards.uids import OVERVIEW_UID, PIPELINE_UID, TAGS, dashboard_url

__all__ = ["INSTANCE", "pipeline_dashboard"]

INSTANCE = 'instance=~"$instance"'
RATE = "$__rate_interval"
QUANTILES = (0.5, 0.95, 0.99)


def _rate_by(metric: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{INSTANCE}}}[{RATE}]))"


def _quantiles(histogram: str) -> list:
    return [
        p.query(
            f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{INSTANCE}}}[{RATE}])))",
            f"p{round(q * 100)}", ref_id=chr(ord("A") + i),
        )
        for i, q in enumerate(QUANTILES)
    ]


def pipeline_dashboard(ctx: DashboardContext) -> dash.Dashboard:
    """Throughput, lag, late and invalid events, explain queue, store errors, window close delay."""
    runbook = {name: p.link(f"Runbook: {name}", ctx.links.runbook(name)) for name in (
        "DriftdDown", "DriftdConsumerLagHigh", "DriftdSchemaViolations", "DriftdDeadLetterRate",
        "DriftdNoEvents", "DriftdExplainQueueSaturated", "DriftdStoreErrors", "DriftdSeriesCapped",
    )}
    th = ctx.thresholds
    invalid = f"sum by (instance) (rate(driftd_invalid_events_total{{{INSTANCE}}}[{RATE}]))"
    accepted = f"sum by (instance) (rate(driftd_events_total{{{INSTANCE}}}[{RATE}]))"
    dashboard = (
        dash.Dashboard("driftd / Pipeline")
        .uid(PIPELINE_UID)
        .description("Health of the driftd daemons: input, lag, windows, explanations, store.")
        .tags(list(TAGS))
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(dash_models.DashboardCursorSync.CROSSHAIR)
        .link(dash.DashboardLink("Overview").url(dashboard_url(OVERVIEW_UID)).icon("dashboard"))
        .variables([
            p.datasource_variable(),
            p.query_variable("instance", "Instance", "label_values(driftd_ready, instance)",
                             multi=True, all_value=".*"),
        ])
    )
    dashboard = (
        dashboard.with_row(dash.Row("Daemons"))
        .with_panel(p.stat(
            "Ready daemons", "Daemons consuming with a reachable store (driftd_ready).",
            p.query(f"sum(driftd_ready{{{INSTANCE}}})"),
            unit=units.Short, thresholds=p.below(1), links=[runbook["DriftdDown"]],
        ))
        .with_panel(p.stat(
            "Assigned partitions", "Kafka partitions assigned to the selected daemons.",
            p.query(f"sum(driftd_consumer_assigned_partitions{{{INSTANCE}}})"),
            unit=units.Short,
        ))
        .with_panel(p.stat(
            "Open windows", "Windows currently open across the selected daemons.",
            p.query(f"sum(driftd_open_windows{{{INSTANCE}}})"), unit=units.Short,
        ))
        .with_panel(p.stat(
            "Since last poll", "Wall time since the oldest selected daemon last polled Kafka.",
            p.query(f"time() - min(driftd_last_poll_timestamp_seconds{{{INSTANCE}}})"),
            unit=units.Seconds,
        ))
        .with_panel(p.stat(
            "Since last checkpoint", "Wall time since the oldest selected daemon last checkpointed.",
            p.query(f"time() - min(driftd_last_checkpoint_timestamp_seconds{{{INSTANCE}}})"),
            unit=units.Seconds,
        ))
        .with_panel(p.stat(
            "Series capped", "Window keys not exported because the cardinality cap was reached.",
            p.query(f"sum(driftd_series_capped_total{{{INSTANCE}}})"),
            unit=units.Short, thresholds=p.above(1), links=[runbook["DriftdSeriesCapped"]],
        ))
    )
    dashboard = (
        dashboard.with_row(dash.Row("Input"))
        .with_panel(p.timeseries(
            "Events/s by model", "Prediction events accepted into windows.",
            [p.query(_rate_by("driftd_events_total", "model"), "{{model}}")],
            unit=units.EventsPerSecond, width=8, min_value=0, links=[runbook["DriftdNoEvents"]],
        ))
        .with_panel(p.timeseries(
            "Invalid events/s by reason",
            "Messages rejected and dead-lettered: not JSON, schema violations, too large, "
            "unknown model.",
            [p.query(_rate_by("driftd_invalid_events_total", "reason"), "{{reason}}")],
            unit=units.EventsPerSecond, width=8, min_value=0,
            links=[runbook["DriftdSchemaViolations"]],
        ))
        .with_panel(p.timeseries(
            "Late events/s by model",
            "Events later than the watermark plus the allowed lateness (counted, not windowed).",
            [p.query(_rate_by("driftd_late_events_total", "model"), "{{model}}")],
            unit=units.EventsPerSecond, width=8, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Dead-letter ratio",
            "Share of incoming messages dead-lettered, per daemon; the alert fires above "
            f"{th.dead_letter_ratio:g}.",
            [p.query(f"{invalid} / ({accepted} + {invalid})", "{{instance}}")],
            unit=units.PercentUnit, width=8, min_value=0, thresholds=p.above(th.dead_letter_ratio),
            links=[runbook["DriftdDeadLetterRate"]],
        ))
        .with_panel(p.timeseries(
            "Labels/s by outcome", "Label events: joined to a prediction, early, duplicate, unknown.",
            [p.query(_rate_by("driftd_labels_total", "outcome"), "{{outcome}}")],
            unit=units.EventsPerSecond, width=8, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Batch processing time", "Time to process one polled batch (quantiles).",
            _quantiles("driftd_batch_duration_seconds"), unit=units.Seconds, width=8, min_value=0,
        ))
    )
    dashboard = (
        dashboard.with_row(dash.Row("Lag and windows"))
        .with_panel(p.timeseries(
            "Consumer lag by topic", "Messages behind the end of each topic, per daemon (summed "
            f"over its partitions); the alert fires above {th.consumer_lag:g}.",
            [p.query(f"sum by (instance, topic) (driftd_consumer_lag{{{INSTANCE}}})",
                     "{{topic}} {{instance}}")],
            unit=units.Short, min_value=0, thresholds=p.above(th.consumer_lag),
            links=[runbook["DriftdConsumerLagHigh"]],
        ))
        .with_panel(p.timeseries(
            "Window close delay", "Wall time between a window's end and its close (quantiles).",
            _quantiles("driftd_window_close_delay_seconds"), unit=units.Seconds, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Windows closed/s by model", "Windows closed and evaluated.",
            [p.query(_rate_by("driftd_windows_closed_total", "model"), "{{model}}")],
            unit=units.OpsPerSecond, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Window compute time", "Time to compute a closed window's statistics (quantiles).",
            _quantiles("driftd_window_compute_seconds"), unit=units.Seconds, min_value=0,
        ))
    )
    return (
        dashboard.with_row(dash.Row("Explanations"))
        .with_panel(p.timeseries(
            "Explain queue utilisation", "Share of the SHAP queue in use, per daemon; the alert "
            f"fires above {th.explain_queue_ratio:g} (work is then dropped, never blocking ingest).",
            [p.query(f"sum by (instance) (driftd_explain_queue_depth{{{INSTANCE}}}) / "
                     f"sum by (instance) (driftd_explain_queue_capacity{{{INSTANCE}}})",
                     "{{instance}}")],
            unit=units.PercentUnit, width=6, min_value=0, max_value=1,
            thresholds=p.above(th.explain_queue_ratio), links=[runbook["DriftdExplainQueueSaturated"]],
        ))
        .with_panel(p.timeseries(
            "Explain queue", "Predictions waiting for SHAP, against the queue's capacity.",
            [p.query(f"sum(driftd_explain_queue_depth{{{INSTANCE}}})", "depth", ref_id="A"),
             p.query(f"sum(driftd_explain_queue_capacity{{{INSTANCE}}})", "capacity", ref_id="B")],
            unit=units.Short, width=6, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Explanations dropped/s by reason",
            "Explanation requests dropped (queue full, rate limit) instead of blocking ingest.",
            [p.query(_rate_by("driftd_explain_dropped_total", "reason"), "{{reason}}")],
            unit=units.OpsPerSecond, width=6, min_value=0,
        ))
        .with_panel(p.timeseries(
            "Explanation latency", "Time from event to stored explanation (quantiles).",
            _quantiles("driftd_explain_latency_seconds"), unit=units.Seconds, width=6, min_value=0,
        ))
        .with_row(dash.Row("Store"))
        .with_panel(p.timeseries(
            "Store errors/s by operation", "Store operations that failed; the alert fires on any.",
            [p.query(_rate_by("driftd_store_errors_total", "operation"), "{{operation}}")],
            unit=units.OpsPerSecond, width=12, min_value=0, links=[runbook["DriftdStoreErrors"]],
        ))
        .with_panel(p.timeseries(
            "Pending store writes", "Results waiting to be written to the store.",
            [p.query(f"sum(driftd_store_pending_writes{{{INSTANCE}}})", "pending")],
            unit=units.Short, width=12, min_value=0,
        ))
    )
