"""Alerts about driftd itself: down, no events, stale windows, lag, dead letters,
explanation queue, store errors, series cap."""

from __future__ import annotations

from alerts.spec import (
    AlertSpec,
    Case,
    Context,
    Series,
    base_labels,
    model_labels,
    parse_duration,
    rate_suffix,
    sel,
    where,
)
from alerts.templating import WINDOW_END_METRIC
from monitor import events

__all__ = ["pipeline_alerts"]


def pipeline_alerts(ctx: Context) -> list[AlertSpec]:
    settings, options = ctx.settings, ctx.options
    job, w = options.job, options.rate_window
    rate = rate_suffix(options)
    base = base_labels(ctx)
    configured = [m.name for m in settings.models]
    subject = configured[0] if configured else "fraud"
    # NoEvents: a known model whose event rate fell to zero, or a configured model that
    # has sent nothing since driftd started (only while driftd itself is up).
    no_events = [f"sum by (job, instance, model) (driftd:events:{rate}) == 0"]
    no_events += [
        f'(absent(driftd_events_total{{job="{job}",model="{name}"}}) and on () (up{{job="{job}"}} == 1))'
        for name in configured
    ]

    def events_of(name: str, firing: float | None) -> Series:
        return Series(
            sel("driftd_events_total", {**base, "model": name, "version": "v1"}),
            firing,
            100.0,
            counter=True,
        )

    others = tuple(events_of(name, 100.0) for name in configured if name != subject)
    up = Series(sel("up", base), 1, 1)
    no_event_cases = [
        Case(
            series=(events_of(subject, 0.0), up, *others),
            labels={**base, "model": subject},
            value=0.0,
        )
    ]
    if configured:
        no_event_cases.append(
            Case(
                series=(events_of(subject, None), up, *others),
                labels={"job": job, "model": subject},
                value=1.0,
            )
        )
    stale_s = settings.stale_window_seconds
    model = model_labels(ctx)
    lag = options.consumer_lag
    explain = options.explain_queue_ratio
    return [
        AlertSpec(
            name="DriftdDown",
            group="driftd-pipeline",
            severity="critical",
            scope="pipeline",
            expr=f'up{{job="{job}"}} == 0',
            summary="Prometheus cannot scrape driftd",
            describe=lambda r: (
                f"Prometheus cannot scrape driftd at {r.label('instance')} (job {r.label('job')}): "
                f"no drift is detected and no drift alert can fire for the models it watches."
            ),
            cases=(Case(series=(Series(sel("up", base), 0, 1),), labels=base, value=0.0),),
        ),
        AlertSpec(
            name="DriftdNoEvents",
            group="driftd-pipeline",
            severity="warning",
            scope="model",
            expr="\nor\n".join(no_events),
            summary="No prediction events arrive for a model",
            describe=lambda r: (
                f"No prediction events of model {r.label('model')} reached driftd over the last {w}: "
                f"the serving service stopped logging, or the topic or model name changed."
            ),
            cases=tuple(no_event_cases),
        ),
        AlertSpec(
            name="DriftdStaleWindows",
            group="driftd-pipeline",
            severity="warning",
            scope="model",
            expr=f"driftd:window_age:seconds > {stale_s:g}",
            summary="driftd closes no new windows for a model",
            describe=lambda r: (
                f"driftd closed no window of {where(r)} for more than {stale_s:g} s "
                f"(2 windows + allowed lateness): events stopped, or the watermark is stuck."
            ),
            cases=(
                Case(
                    # Firing: the window end stays at 0; quiet: it keeps up with the clock.
                    series=(Series(sel(WINDOW_END_METRIC, model), 0.0, 1.0, counter=True),),
                    labels=model,
                    value=float("nan"),
                    window_end=0.0,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdConsumerLagHigh",
            group="driftd-pipeline",
            severity="warning",
            scope="pipeline",
            expr=f"driftd:consumer_lag:sum > {lag:g}",
            summary="driftd falls behind its Kafka topic",
            describe=lambda r: (
                f"driftd at {r.label('instance')} is {r.value('%.0f')} messages behind topic "
                f"{r.label('topic')} (alert above {lag:g}); drift verdicts arrive late."
            ),
            cases=(
                Case(
                    series=tuple(
                        Series(
                            sel(
                                "driftd_consumer_lag",
                                {**base, "topic": "predictions", "partition": p},
                            ),
                            lag * 0.75,
                            10,
                        )
                        for p in ("0", "1")
                    ),
                    labels={**base, "topic": "predictions"},
                    value=lag * 1.5,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdDeadLetterRate",
            group="driftd-pipeline",
            severity="warning",
            scope="pipeline",
            expr=f"driftd:dead_letter:ratio_{rate} > {options.dead_letter_ratio:g}",
            summary="A large share of incoming messages is dead-lettered",
            describe=lambda r: (
                f"driftd at {r.label('instance')} dead-letters {r.value()} of incoming messages "
                f"(alert above {options.dead_letter_ratio:g}); see driftd_invalid_events_total by reason."
            ),
            cases=(
                Case(
                    series=(
                        Series(
                            sel("driftd_events_total", {**base, "model": "fraud", "version": "v1"}),
                            10.0,
                            10.0,
                            counter=True,
                        ),
                        Series(
                            sel(
                                "driftd_invalid_events_total",
                                {**base, "reason": events.UNKNOWN_MODEL},
                            ),
                            1.0,
                            0.0,
                            counter=True,
                        ),
                    ),
                    labels=base,
                    value=1 / 11,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdLateEvents",
            group="driftd-pipeline",
            severity="warning",
            scope="pipeline",
            expr=f"driftd:late_events:ratio_{rate} > {settings.alerts.late_ratio:g}",
            summary="A large share of a model's events arrives after its window closed",
            describe=lambda r: (
                f"{r.value()} of the events of model {r.label('model')} at driftd {r.label('instance')} are late "
                f"(alert above {settings.alerts.late_ratio:g}): they are dead-lettered with reason late, "
                "not counted in windows. A producer buffers longer than windows.allowed_lateness_seconds, "
                "or its clock lags."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_events_total", {**base, "model": "fraud", "version": "v1"}),
                               10.0, 10.0, counter=True),
                        Series(sel("driftd_late_events_total", {**base, "model": "fraud"}), 1.0, 0.0, counter=True),
                    ),
                    labels={**base, "model": "fraud"},
                    value=1 / 11,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdDeadLetterFailures",
            group="driftd-pipeline",
            severity="warning",
            scope="pipeline",
            expr=f"increase(driftd_dead_letter_errors_total[{w}]) > 0",
            summary="Rejected messages cannot be written to the dead-letter topic",
            describe=lambda r: (
                f"driftd at {r.label('instance')} failed to dead-letter {r.value('%.0f')} rejected "
                f"messages over the last {w}; they are only in their source topic (until its "
                "retention) and the daemon's log."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_dead_letter_errors_total", base), 0.1, 0.0, counter=True),
                    ),
                    labels=base,
                    value=0.1 * parse_duration(w),
                ),
            ),
        ),
        AlertSpec(
            name="DriftdExplainQueueSaturated",
            group="driftd-pipeline",
            severity="info",
            scope="pipeline",
            expr=f"driftd:explain_queue:utilisation_ratio > {explain:g}",
            summary="The SHAP explanation queue is full; explanations are dropped",
            describe=lambda r: (
                f"The explanation queue of driftd at {r.label('instance')} is {r.value()} full "
                f"(alert above {explain:g}); sampled predictions are dropped, ingest is not slowed."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_explain_queue_depth", base), 1000, 10),
                        Series(sel("driftd_explain_queue_capacity", base), 1000, 1000),
                    ),
                    labels=base,
                    value=1.0,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdStoreErrors",
            group="driftd-pipeline",
            severity="warning",
            scope="pipeline",
            expr=f"sum by (job, instance, operation) (rate(driftd_store_errors_total[{w}])) > 0",
            summary="driftd cannot write to its store",
            describe=lambda r: (
                f"Store operation {r.label('operation')} of driftd at {r.label('instance')} fails "
                f"{r.value()} times/s; results and checkpoints may not be saved."
            ),
            cases=(
                Case(
                    series=(
                        Series(
                            sel("driftd_store_errors_total", {**base, "operation": "write_window"}),
                            0.1,
                            0.0,
                            counter=True,
                        ),
                    ),
                    labels={**base, "operation": "write_window"},
                    value=0.1,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdSeriesCapped",
            group="driftd-pipeline",
            severity="info",
            scope="pipeline",
            expr=f"increase(driftd_series_capped_total[{w}]) > 0",
            summary="Window results are not exported because the series cap was reached",
            describe=lambda r: (
                f"driftd at {r.label('instance')} refused {r.value('%.0f')} model/segment keys over the "
                f"last {w} (limits.max_models / max_segments_per_model)."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_series_capped_total", base), 0.1, 0.0, counter=True),
                    ),
                    labels=base,
                    value=0.1 * parse_duration(w),
                ),
            ),
        ),
    ]
