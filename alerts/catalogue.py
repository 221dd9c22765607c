"""Every driftd alert and recording rule, built from the configuration and the detector registry.

Rules and their ``promtool`` unit tests come from the same :class:`AlertSpec`
records (:mod:`alerts.rules` renders the rules, :mod:`alerts.ruletests` the tests).

Severities: ``critical`` pages (model drift, performance drop, driftd down),
``warning`` opens a ticket, ``info`` is recorded but notifies nobody.
"""

from __future__ import annotations

from alerts.model_alerts import LOWER_IS_BETTER, SCHEMA_REASONS, drift_alerts, quality_alerts
from alerts.pipeline_alerts import pipeline_alerts
from alerts.spec import (
    AlertSpec,
    Case,
    Context,
    RecordingRule,
    RuleOptions,
    Series,
    parse_duration,
    rate_suffix,
)
from alerts.templating import WINDOW_END_METRIC
from detectors.registry import REGISTRY
from monitor.config import Settings

__all__ = [
    "LOWER_IS_BETTER",
    "SCHEMA_REASONS",
    "AlertSpec",
    "Case",
    "RecordingRule",
    "RuleOptions",
    "Series",
    "build_alerts",
    "build_recording_rules",
    "parse_duration",
]


def build_recording_rules(settings: Settings, options: RuleOptions) -> list[RecordingRule]:
    """Recording rules for the expressions that alerts and dashboards share."""
    del settings  # thresholds live in the alerts; kept for a uniform signature
    w = options.rate_window
    rate = rate_suffix(options)
    # One term per registered method: the score over its threshold, oriented so that
    # a ratio above 1 always means "past the threshold".
    margin_terms = []
    for name in sorted(REGISTRY):
        score = f'driftd_feature_drift_score{{method="{name}"}}'
        threshold = f'driftd_feature_drift_threshold{{method="{name}"}}'
        ratio = (
            f"{score} / {threshold}" if REGISTRY[name].higher_is_drift else f"{threshold} / {score}"
        )
        margin_terms.append(f"({ratio})")
    return [
        RecordingRule("driftd:feature_drift_score:threshold_ratio", "\nor\n".join(margin_terms)),
        RecordingRule(
            "driftd:model_drifted_features:count",
            "sum without (feature, method) (driftd_feature_drifted)",
        ),
        RecordingRule(
            f"driftd:events:{rate}",
            f"sum by (job, instance, model, version) (rate(driftd_events_total[{w}]))",
        ),
        RecordingRule(
            f"driftd:invalid_events:{rate}",
            f"sum by (job, instance, reason) (rate(driftd_invalid_events_total[{w}]))",
        ),
        RecordingRule(
            f"driftd:dead_letter:ratio_{rate}",
            f"sum by (job, instance) (driftd:invalid_events:{rate})\n/\n"
            f"(sum by (job, instance) (driftd:events:{rate}) + sum by (job, instance) (driftd:invalid_events:{rate}))",
        ),
        RecordingRule(
            f"driftd:late_events:ratio_{rate}",
            f"sum by (job, instance, model) (rate(driftd_late_events_total[{w}]))\n/\n"
            f"(sum by (job, instance, model) (rate(driftd_late_events_total[{w}])) + sum by (job, instance, model) (driftd:events:{rate}))",
        ),
        RecordingRule("driftd:window_age:seconds", f"time() - {WINDOW_END_METRIC}"),
        RecordingRule(
            "driftd:consumer_lag:sum", "sum by (job, instance, topic) (driftd_consumer_lag)"
        ),
        RecordingRule(
            "driftd:explain_queue:utilisation_ratio",
            "driftd_explain_queue_depth / driftd_explain_queue_capacity",
        ),
    ]


def build_alerts(settings: Settings, options: RuleOptions) -> list[AlertSpec]:
    """Every alert, with thresholds from ``settings`` and ``options``."""
    ctx = Context(settings, options)
    return [
        *drift_alerts(ctx),
        *quality_alerts(ctx),
        *pipeline_alerts(ctx),
    ]
