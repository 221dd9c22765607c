"""Alerts about a model: drift of inputs, predictions, performance, calibration and
attributions, and the quality of its inputs."""

from __future__ import annotations

from alerts.spec import (
    AlertSpec,
    Case,
    Context,
    RuleOptions,
    Series,
    base_labels,
    model_labels,
    parse_duration,
    rate_suffix,
    sel,
    where,
)
from detectors.registry import REGISTRY
from monitor import events
from monitor.config import Settings
from monitor.findings import LOWER_IS_BETTER
from monitor.metrics import PERFORMANCE_METRICS

__all__ = ["LOWER_IS_BETTER", "SCHEMA_REASONS", "drift_alerts", "quality_alerts"]
# Reasons of driftd_invalid_events_total that mean "the producer broke the event contract".
SCHEMA_REASONS = (events.SCHEMA, events.NOT_JSON, events.BAD_TIMESTAMP, events.TOO_LARGE)


def drift_for_duration(settings: Settings, options: RuleOptions) -> str | None:
    """``for`` of the drift rules: alerts.for_duration plus a window per extra flagged window required.

    A flagged window holds its gauge for one window, so ``for`` up to one window lets one
    flagged window alert (``drift.alert_windows: 1``, what the budget's per-window level
    assumes); each further window the budget requires (detectors/budget.py) adds one.
    """
    extra = (settings.drift.alert_windows - 1) * settings.windows.size_seconds
    if extra <= 0:
        return None
    return f"{int(parse_duration(options.for_duration) + extra)}s"


def drift_alerts(ctx: Context) -> list[AlertSpec]:
    settings, options = ctx.settings, ctx.options
    key = "job, instance, model, version, segment"
    feature_cases = []
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        threshold = settings.drift.thresholds.get(name, spec.default_threshold)
        high, low = threshold * 2, threshold / 2
        labels = {**model_labels(ctx, segment=""), "feature": "amount", "method": name}
        feature_cases.append(
            Case(
                series=(
                    Series(
                        sel("driftd_feature_drift_score", labels),
                        high if spec.higher_is_drift else low,
                        low if spec.higher_is_drift else high,
                    ),
                    Series(sel("driftd_feature_drift_threshold", labels), threshold, threshold),
                    Series(sel("driftd_feature_drifted", labels), 1, 0),
                ),
                labels=labels,
                value=2.0,
                window_end=ctx.window_end,
            )
        )
    share = settings.drift.drift_share_threshold
    drift_for = drift_for_duration(settings, options)
    model = model_labels(ctx)
    pred_method = min(REGISTRY)
    pred = {**model, "method": pred_method}
    higher = [m for m in PERFORMANCE_METRICS if m not in LOWER_IS_BETTER]
    lower = [m for m in PERFORMANCE_METRICS if m in LOWER_IS_BETTER]
    tol = options.performance_tolerance
    perf_key = f"{key}, metric"

    def perf_case(
        metric: str,
        firing: tuple[float, float, float],
        quiet: tuple[float, float, float],
        baseline: float,
    ) -> Case:
        labels = {**model, "metric": metric}
        names = ("driftd_performance", "driftd_performance_lower", "driftd_performance_upper")
        return Case(
            series=(
                *(
                    Series(sel(n, labels), f, q)
                    for n, f, q in zip(names, firing, quiet, strict=True)
                ),
                Series(sel("driftd_performance_baseline", labels), baseline, baseline),
            ),
            labels=labels,
            value=firing[0],
            window_end=ctx.window_end,
        )

    return [
        AlertSpec(
            name="DriftdFeatureDrift",
            group="driftd-drift",
            severity="warning",
            scope="feature",
            expr=f"driftd:feature_drift_score:threshold_ratio\nand on ({key}, feature, method)\n(driftd_feature_drifted == 1)",
            summary="A feature's input distribution drifted from its baseline",
            describe=lambda r: (
                f"The input distribution of {where(r, feature=True)} drifted in the last closed "
                f"window: its {r.label('method')} score is {r.value('%.2f')} times its threshold."
            ),
            cases=tuple(feature_cases),
            keep_firing=True,
            for_duration=drift_for,
        ),
        AlertSpec(
            name="DriftdModelDrift",
            group="driftd-drift",
            severity="critical",
            scope="model",
            expr=f"driftd_model_drift_share_ratio >= {share:g}",
            summary="A large share of a model's features drifted",
            describe=lambda r: (
                f"A share of {r.value('%.2f')} of the features of {where(r)} drifted in the last "
                f"closed window (alert at {share:g}); its predictions may no longer be trustworthy."
            ),
            cases=(
                Case(
                    series=(
                        Series(
                            sel("driftd_model_drift_share_ratio", model),
                            min(1.0, share + 0.25),
                            share / 2,
                        ),
                    ),
                    labels=model,
                    value=min(1.0, share + 0.25),
                    window_end=ctx.window_end,
                ),
            ),
            keep_firing=True,
            for_duration=drift_for,
        ),
        AlertSpec(
            name="DriftdPredictionDrift",
            group="driftd-drift",
            severity="warning",
            scope="model",
            expr=f"driftd_prediction_drift_score\nand on ({key}, method)\n(driftd_prediction_drifted == 1)",
            summary="The distribution of a model's predictions drifted",
            describe=lambda r: (
                f"The predictions of {where(r)} drifted in the last closed window "
                f"({r.label('method')} score {r.value()})."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_prediction_drift_score", pred), 0.4, 0.01),
                        Series(sel("driftd_prediction_drifted", pred), 1, 0),
                    ),
                    labels=pred,
                    value=0.4,
                    window_end=ctx.window_end,
                ),
            ),
            keep_firing=True,
            for_duration=drift_for,
        ),
        AlertSpec(
            name="DriftdPerformanceDrop",
            group="driftd-drift",
            severity="critical",
            scope="model",
            expr=(
                f'(driftd_performance{{metric=~"{"|".join(higher)}"}}\n and on ({perf_key})\n'
                f" (driftd_performance_upper < driftd_performance_baseline * {1 - tol:g}))\nor\n"
                f'(driftd_performance{{metric=~"{"|".join(lower)}"}}\n and on ({perf_key})\n'
                f" (driftd_performance_lower > driftd_performance_baseline * {1 + tol:g}))"
            ),
            summary="A model's realised performance dropped below its baseline",
            describe=lambda r: (
                f"Realised {r.label('metric')} of {where(r)} is {r.value()}: worse than the baseline "
                f"by more than {tol:.0%} beyond its 95% confidence interval."
            ),
            cases=(
                perf_case("accuracy", (0.70, 0.65, 0.75), (0.89, 0.85, 0.93), 0.90),
                perf_case("log_loss", (0.90, 0.80, 1.00), (0.50, 0.45, 0.55), 0.50),
            ),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdConceptDriftAlarm",
            group="driftd-drift",
            severity="warning",
            scope="model",
            expr=(
                f"count by ({key}) (driftd_concept_drift_last_alarm_age_seconds"
                f" < {parse_duration(options.concept_alarm_window):g}) >= {options.concept_alarm_detectors}"
            ),
            summary="Sequential detectors saw a model's error stream change",
            describe=lambda r: (
                f"{r.value('%.0f')} of the sequential detectors (ADWIN, Page-Hinkley, DDM) raised an "
                f"alarm on the error stream of {where(r)} within {options.concept_alarm_window}: "
                "the model's errors rose as labels joined."
            ),
            cases=(
                Case(
                    series=tuple(
                        Series(sel("driftd_concept_drift_last_alarm_age_seconds", {**model, "detector": d}), 60, 86_400)
                        for d in ("adwin", "ddm")
                    ),
                    labels=model,
                    value=2,
                    window_end=ctx.window_end,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdCalibrationDrift",
            group="driftd-drift",
            severity="warning",
            scope="model",
            expr=(
                "driftd_calibration_ece_equal_width - driftd_calibration_ece_equal_width_baseline"
                f" > {options.ece_increase:g}"
            ),
            summary="A model's probability calibration got worse than its baseline",
            describe=lambda r: (
                f"The expected calibration error of {where(r)} is {r.value()} above its baseline "
                f"(alert above {options.ece_increase:g}); scores no longer mean what they say."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_calibration_ece_equal_width", model), 0.15, 0.04),
                        Series(
                            sel("driftd_calibration_ece_equal_width_baseline", model), 0.03, 0.03
                        ),
                    ),
                    labels=model,
                    value=0.12,
                    window_end=ctx.window_end,
                ),
            ),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdAttributionDrift",
            group="driftd-drift",
            severity="warning",
            scope="model",
            expr=f"driftd_attribution_ndcg\nand on ({key})\n(driftd_attribution_drifted == 1)",
            summary="The features a model relies on changed (SHAP attribution drift)",
            describe=lambda r: (
                f"Mean |SHAP| importances of {where(r)} no longer rank like the baseline's "
                f"(NDCG {r.value()}): the model relies on different features."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_attribution_ndcg", model), 0.6, 0.97),
                        Series(sel("driftd_attribution_drifted", model), 1, 0),
                    ),
                    labels=model,
                    value=0.6,
                    window_end=ctx.window_end,
                ),
            ),
            keep_firing=True,
        ),
    ]


def quality_alerts(ctx: Context) -> list[AlertSpec]:
    options = ctx.options
    feature = {**model_labels(ctx), "feature": "country"}
    reasons = "|".join(SCHEMA_REASONS)
    model_only = {**base_labels(ctx), "model": "fraud"}
    return [
        AlertSpec(
            name="DriftdMissingValueSurge",
            group="driftd-quality",
            severity="warning",
            scope="feature",
            expr=(
                "driftd_feature_missing_ratio - driftd_feature_missing_baseline_ratio"
                f" > {options.missing_increase:g}"
            ),
            summary="A feature is missing far more often than in the baseline",
            describe=lambda r: (
                f"The share of missing values of {where(r, feature=True)} is {r.value()} above its "
                f"baseline (alert above {options.missing_increase:g})."
            ),
            cases=(
                Case(
                    series=(
                        Series(sel("driftd_feature_missing_ratio", feature), 0.35, 0.03),
                        Series(sel("driftd_feature_missing_baseline_ratio", feature), 0.02, 0.02),
                    ),
                    labels=feature,
                    value=0.33,
                    window_end=ctx.window_end,
                ),
            ),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdUnseenCategories",
            group="driftd-quality",
            severity="warning",
            scope="feature",
            # The excess over the baseline's Good-Turing expectation: a long-tailed
            # category's usual trickle of new values does not page.
            expr=f"driftd_feature_unseen_excess_ratio > {options.unseen_ratio:g}",
            summary="A categorical feature carries values never seen in the baseline",
            describe=lambda r: (
                f"{r.value()} of the values of {where(r, feature=True)} were never seen in the "
                f"baseline, beyond the share its long tail predicts (alert above {options.unseen_ratio:g})."
            ),
            cases=(
                Case(
                    series=(Series(sel("driftd_feature_unseen_excess_ratio", feature), 0.2, 0.0),),
                    labels=feature,
                    value=0.2,
                    window_end=ctx.window_end,
                ),
            ),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdSchemaViolations",
            group="driftd-quality",
            severity="warning",
            scope="pipeline",
            # The recording rule's sum, filtered before summing (Grafana rules inline it).
            expr=(
                f"sum by (job, instance, reason) "
                f'(rate(driftd_invalid_events_total{{reason=~"{reasons}"}}[{options.rate_window}])) > 0'
            ),
            summary="Producers send events that break the event contract",
            describe=lambda r: (
                f"driftd at {r.label('instance')} dead-letters {r.value()} events/s with reason "
                f"{r.label('reason')}: a producer breaks the event contract."
            ),
            cases=(
                Case(
                    series=(
                        Series(
                            sel(
                                "driftd_invalid_events_total",
                                {**base_labels(ctx), "reason": events.SCHEMA},
                            ),
                            0.5,
                            0,
                            counter=True,
                        ),
                    ),
                    labels={**base_labels(ctx), "reason": events.SCHEMA},
                    value=0.5,
                ),
            ),
        ),
        AlertSpec(
            name="DriftdFeatureTypeErrors",
            group="driftd-quality",
            severity="warning",
            scope="model",
            expr=f"sum by (job, instance, model) (rate(driftd_feature_type_errors_total[{options.rate_window}])) > 0",
            summary="Feature values arrive with the wrong type for the baseline",
            describe=lambda r: (
                f"{r.value()} feature values/s of model {r.label('model')} have the wrong type for "
                f"its baseline and are counted as missing."
            ),
            cases=(
                Case(
                    series=(
                        Series(
                            sel("driftd_feature_type_errors_total", model_only),
                            2.0,
                            0,
                            counter=True,
                        ),
                    ),
                    labels=model_only,
                    value=2.0,
                ),
            ),
        ),
    ]
