"""The Model dashboard: one model version (and its segments) in depth.

Template variables pick the model, version, segments and features; every query
filters on them through :data:`SELECTOR` and :data:`FEATURES`. Drift scores of
different methods live on different scales, so panels either divide each score by
its own exported threshold (1 = at threshold, whatever the method) or draw each
method's threshold on the series of that method.
"""

from __future__ import annotations

import re

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as dash_models
from grafana_foundation_sdk.models import units

from dashboards import panels as p
from dashboards.context import DashboardContext
from dashboards.uids import MODEL_UID, OVERVIEW_UID, TAGS, dashboard_url
from monitor.metrics import CALIBRATION_STATISTICS

__all__ = ["FEATURES", "SELECTOR", "model_dashboard"]

SELECTOR = 'model="$model", version="$version", segment=~"$segment"'
FEATURES = f'{SELECTOR}, feature=~"$feature"'
SCORE_UNIT = "none"  # effect sizes are unitless and on each method's own scale
RATIO_UNIT = "suffix:× threshold"

# Calibration panels: (title, statistics drawn, each with its baseline).
CALIBRATION_PANELS = (
    ("Expected calibration error", ("ece_equal_width", "ece_equal_mass"), units.NoUnit),
    ("Brier score and decomposition",
     ("brier_score", "brier_reliability", "brier_resolution"), units.NoUnit),
    ("Calibration slope and intercept", ("slope", "intercept"), units.NoUnit),
)


def _variables() -> list[dash.QueryVariable | dash.DatasourceVariable]:
    return [
        p.datasource_variable(),
        p.query_variable("model", "Model", "label_values(driftd_window_events, model)"),
        p.query_variable("version", "Version",
                         'label_values(driftd_window_events{model="$model"}, version)',
                         newest_first=True),
        p.query_variable("segment", "Segment",
                         'label_values(driftd_window_events{model="$model", version="$version"}, segment)',
                         multi=True, all_value=".*"),
        p.query_variable("feature", "Feature",
                         'label_values(driftd_feature_drift_score{model="$model", version="$version"}, feature)',
                         multi=True, all_value=".*"),
        p.query_variable("metric", "Performance metric",
                         'label_values(driftd_performance{model="$model", version="$version"}, metric)'),
    ]


def threshold_ratio(ctx: DashboardContext, selector: str, by: str) -> str:
    """Score over its own threshold, oriented so that above 1 always means drift.

    The same orientation as the alerts' ``driftd:feature_drift_score:threshold_ratio``;
    one term per method only when some method drifts downwards.
    """
    score = f"driftd_feature_drift_score{{{selector}}}"
    threshold = f"driftd_feature_drift_threshold{{{selector}}}"
    if all(ctx.thresholds.higher_is_drift.values()):
        return f"max by ({by}) ({score} / {threshold})"
    terms = []
    for method, higher in ctx.thresholds.higher_is_drift.items():
        m_score = score.replace("}", f', method="{method}"}}')
        m_threshold = threshold.replace("}", f', method="{method}"}}')
        terms.append(f"({m_score} / {m_threshold})" if higher else f"({m_threshold} / {m_score})")
    return f"max by ({by}) ({' or '.join(terms)})"


def _method_overrides(panel, ctx: DashboardContext, legend_suffix: str):
    """Give every series of method M (legend ending in ``(M)``) M's threshold."""
    for method, threshold in ctx.thresholds.methods.items():
        steps = p.above(threshold) if ctx.thresholds.higher_is_drift[method] else p.below(threshold)
        panel = panel.override_by_regexp(
            f".*{re.escape(legend_suffix.format(method=method))}$",
            [dash_models.DynamicConfigValue(id_val="thresholds", value=steps.build())],
        )
    return panel


def model_dashboard(ctx: DashboardContext) -> dash.Dashboard:
    """Feature, prediction and label drift, performance, calibration and attribution."""
    t = ctx.links
    app_feature = p.link("Investigate ${__field.labels.feature} in the app",
                         t.app("${model:percentencode}", "${version:percentencode}",
                               "${__field.labels.feature:percentencode}"))
    app_feature_row = p.link("Investigate ${__data.fields.feature} in the app",
                             t.app("${model:percentencode}", "${version:percentencode}",
                                   "${__data.fields.feature:percentencode}",
                                   segment="${__data.fields.segment:percentencode}"))
    app_model = p.link("Investigate ${model} ${version} in the app",
                       t.app("${model:percentencode}", "${version:percentencode}"))
    runbook = {name: p.link(f"Runbook: {name}", t.runbook(name)) for name in (
        "DriftdModelDrift", "DriftdFeatureDrift", "DriftdPredictionDrift",
        "DriftdPerformanceDrop", "DriftdCalibrationDrift", "DriftdAttributionDrift",
        "DriftdMissingValueSurge", "DriftdUnseenCategories", "DriftdStaleWindows",
    )}
    th = ctx.thresholds
    drift_share = ctx.thresholds.drift_share

    dashboard = (
        dash.Dashboard("driftd / Model")
        .uid(MODEL_UID)
        .description("One model version: which features drifted, and what it did to predictions, "
                     "performance, calibration and explanations.")
        .tags(list(TAGS))
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(dash_models.DashboardCursorSync.CROSSHAIR)
        .link(dash.DashboardLink("Overview").url(dashboard_url(OVERVIEW_UID)).icon("dashboard"))
        .link(dash.DashboardLink("Investigation app").url(t.app("${model:percentencode}",
                                                                 "${version:percentencode}"))
              .target_blank(True).icon("external link"))
        .variables(_variables())
    )

    dashboard = (
        dashboard.with_row(dash.Row("Last window"))
        .with_panel(p.stat(
            "Drift share", "Share of features that drifted in the last closed window; the model "
            f"counts as drifted at {drift_share:g}.",
            p.query(f"max(driftd_model_drift_share_ratio{{{SELECTOR}}})"),
            unit=units.PercentUnit, thresholds=p.above(drift_share),
            links=[runbook["DriftdModelDrift"], app_model],
        ))
        .with_panel(p.stat(
            "Weighted drift", "Share of drifted features weighted by baseline SHAP importance.",
            p.query(f"max(driftd_model_drift_score{{{SELECTOR}}})"),
            unit=units.PercentUnit, thresholds=p.above(drift_share),
        ))
        .with_panel(p.stat(
            "Drifted features", "Features flagged in the last closed window (selected features).",
            p.query(f"sum(max by (segment, feature) (driftd_feature_drifted{{{FEATURES}}}))"),
            unit=units.Short, links=[runbook["DriftdFeatureDrift"]],
        ))
        .with_panel(p.stat(
            "Events in window", "Events in the last closed window, summed over selected segments.",
            p.query(f"sum(max by (segment) (driftd_window_events{{{SELECTOR}}}))"),
            unit=units.Short,
        ))
        .with_panel(p.stat(
            "Label coverage", "Share of the last window's predictions whose label has arrived.",
            p.query(f"min(driftd_label_coverage_ratio{{{SELECTOR}}})"),
            unit=units.PercentUnit,
        ))
        .with_panel(p.stat(
            "Oldest window age", "Wall time since the event-time end of the last closed window, "
            f"for the segment furthest behind; stale after {th.stale_window_seconds:g} s.",
            p.query(f"max(time() - driftd_window_end_timestamp_seconds{{{SELECTOR}}})"),
            unit=units.Seconds, thresholds=p.above(th.stale_window_seconds),
            links=[runbook["DriftdStaleWindows"]],
        ))
    )

    by_feature = "max by (segment, feature, method)"
    dashboard = (
        dashboard.with_row(dash.Row("Feature drift"))
        .with_panel(p.heatmap(
            "Feature drift over time (score ÷ threshold)",
            "Each row is a feature, each cell a window: its drift score divided by its own "
            "threshold, so 1 is the alert line whatever the method; red cells drifted.",
            p.query(threshold_ratio(ctx, FEATURES, "feature"), "{{feature}}"),
            unit=RATIO_UNIT, max_value=2, data_links=[app_feature],
        ))
        .with_panel(p.table(
            "Top drifting features",
            "Features of the last closed window ordered by score ÷ threshold (1 = threshold).",
            [
                p.query(threshold_ratio(ctx, FEATURES, "segment, feature, method"),
                        ref_id="A", instant=True, table=True),
                p.query(f"{by_feature} (driftd_feature_drift_score{{{FEATURES}}})",
                        ref_id="B", instant=True, table=True),
                p.query(f"{by_feature} (driftd_feature_drift_threshold{{{FEATURES}}})",
                        ref_id="C", instant=True, table=True),
                p.query(f"{by_feature} (driftd_feature_drift_p_value{{{FEATURES}}})",
                        ref_id="D", instant=True, table=True),
                p.query(f"{by_feature} (driftd_feature_drifted{{{FEATURES}}})",
                        ref_id="E", instant=True, table=True),
            ],
            unit=RATIO_UNIT,
            transformations=p.merge_and_rename(
                {"feature": "feature", "segment": "segment", "method": "method",
                 "Value #A": "score ÷ threshold", "Value #B": "score", "Value #C": "threshold",
                 "Value #D": "p-value", "Value #E": "drifted"},
                sort_field="Value #A", limit=20,
            ),
            sort_by="score ÷ threshold",
            thresholds=p.above(1),
            column_units={"score": SCORE_UNIT, "threshold": SCORE_UNIT, "p-value": units.NoUnit,
                          "drifted": units.NoUnit},
            coloured=["score ÷ threshold"],
            data_links=[app_feature_row], links=[runbook["DriftdFeatureDrift"]],
            width=10, height=10,
        ))
        .with_panel(_method_overrides(p.timeseries(
            "Feature drift score by method",
            "Raw effect sizes; each series carries its method's threshold (dashed).",
            [p.query(f"max by (feature, method) (driftd_feature_drift_score{{{FEATURES}}})",
                     "{{feature}} ({{method}})")],
            unit=SCORE_UNIT, width=14, height=10, thresholds=p.plain(), data_links=[app_feature],
        ), ctx, " ({method})"))
        .with_panel(p.timeseries(
            "Missing values above baseline",
            "Share of missing values per feature minus the baseline's share; the alert fires "
            f"above {th.missing_increase:g}.",
            [p.query(f"max by (feature) (driftd_feature_missing_ratio{{{FEATURES}}} "
                     f"- driftd_feature_missing_baseline_ratio{{{FEATURES}}})", "{{feature}}")],
            unit=units.PercentUnit, thresholds=p.above(th.missing_increase),
            data_links=[app_feature], links=[runbook["DriftdMissingValueSurge"]],
        ))
        .with_panel(p.timeseries(
            "Unseen categories",
            "Share of a categorical feature's values never seen in the baseline, minus the share "
            f"its long tail predicts (Good-Turing); the alert fires above {th.unseen_ratio:g}.",
            [p.query(f"max by (feature) (driftd_feature_unseen_excess_ratio{{{FEATURES}}})",
                     "{{feature}}")],
            unit=units.PercentUnit, thresholds=p.above(th.unseen_ratio),
            data_links=[app_feature], links=[runbook["DriftdUnseenCategories"]],
        ))
    )

    dashboard = (
        dashboard.with_row(dash.Row("Predictions and labels"))
        .with_panel(_method_overrides(p.timeseries(
            "Prediction drift", "Drift of the model's output distribution against the baseline.",
            [p.query(f"max by (method) (driftd_prediction_drift_score{{{SELECTOR}}})",
                     "prediction ({{method}})")],
            unit=SCORE_UNIT, width=8, thresholds=p.plain(),
            links=[runbook["DriftdPredictionDrift"], app_model],
        ), ctx, " ({method})"))
        .with_panel(_method_overrides(p.timeseries(
            "Label drift", "Prior drift: the distribution of true labels against the baseline.",
            [p.query(f"max by (method) (driftd_label_drift_score{{{SELECTOR}}})",
                     "label ({{method}})")],
            unit=SCORE_UNIT, width=8, thresholds=p.plain(), links=[app_model],
        ), ctx, " ({method})"))
        .with_panel(p.timeseries(
            "Label coverage", "Share of each window's predictions whose label has arrived.",
            [p.query(f"min by (segment) (driftd_label_coverage_ratio{{{SELECTOR}}})",
                     "{{segment}}")],
            unit=units.PercentUnit, width=8, min_value=0, max_value=1,
        ))
    )

    metric = f'{SELECTOR}, metric="$metric"'
    # DriftdPerformanceDrop fires when the whole 95% interval is past this line.
    worse_up = "|".join(sorted(th.lower_is_better))
    alert_line = (
        f'(max by (segment) (driftd_performance_baseline{{{metric}, metric!~"{worse_up}"}}) '
        f"* {1 - th.performance_tolerance:g}) or "
        f'(max by (segment) (driftd_performance_baseline{{{metric}, metric=~"{worse_up}"}}) '
        f"* {1 + th.performance_tolerance:g})"
    )
    dashboard = (
        dashboard.with_row(dash.Row("Performance"))
        .with_panel(p.timeseries(
            "Realised vs estimated ${metric}",
            "Realised performance once labels join (with its 95% interval), the estimate "
            "from scores before labels arrive, and the baseline. The alert fires when the "
            f"whole interval is past the alert line (baseline ± {th.performance_tolerance:.0%}).",
            [
                p.query(f"max by (segment) (driftd_performance{{{metric}}})",
                        "realised {{segment}}", ref_id="A"),
                p.query(f"max by (segment) (driftd_performance_lower{{{metric}}})",
                        "realised, 95% low {{segment}}", ref_id="B"),
                p.query(f"max by (segment) (driftd_performance_upper{{{metric}}})",
                        "realised, 95% high {{segment}}", ref_id="C"),
                p.query(f"max by (segment) (driftd_estimated_performance{{{metric}}})",
                        "estimated {{segment}}", ref_id="D"),
                p.query(f"max by (segment) (driftd_performance_baseline{{{metric}}})",
                        "baseline {{segment}}", ref_id="E"),
                p.query(alert_line, "alert line {{segment}}", ref_id="F"),
            ],
            unit=units.NoUnit, width=16, links=[runbook["DriftdPerformanceDrop"], app_model],
        ))
        .with_panel(p.table(
            "All metrics, latest with labels",
            "Realised, estimated and baseline value of every metric, each the latest in the "
            "time range: labels arrive late, so the newest window often has none yet.",
            [
                p.query(f"max by (metric) (last_over_time(driftd_performance{{{SELECTOR}}}[$__range]))",
                        ref_id="A", instant=True, table=True),
                p.query("max by (metric) (last_over_time("
                        f"driftd_estimated_performance{{{SELECTOR}}}[$__range]))",
                        ref_id="B", instant=True, table=True),
                p.query("max by (metric) (last_over_time("
                        f"driftd_performance_baseline{{{SELECTOR}}}[$__range]))",
                        ref_id="C", instant=True, table=True),
            ],
            unit=units.NoUnit,
            transformations=p.merge_and_rename({
                "metric": "metric", "Value #A": "realised", "Value #B": "estimated",
                "Value #C": "baseline"}),
            width=8,
        ))
    )

    dashboard = dashboard.with_row(dash.Row("Calibration")).with_panel(p.timeseries(
        "ECE above baseline",
        "Expected calibration error (equal-width bins) minus the baseline's; the alert fires "
        f"above {th.ece_increase:g}.",
        [p.query(f"max by (segment) (driftd_calibration_ece_equal_width{{{SELECTOR}}} "
                 f"- driftd_calibration_ece_equal_width_baseline{{{SELECTOR}}})", "{{segment}}")],
        unit=units.NoUnit, width=6, thresholds=p.above(th.ece_increase),
        links=[runbook["DriftdCalibrationDrift"]],
    ))
    for title, statistics, unit in CALIBRATION_PANELS:
        targets = []
        for statistic in statistics:
            if statistic not in CALIBRATION_STATISTICS:
                raise KeyError(f"unknown calibration statistic {statistic!r}")
            name = statistic.replace("_", " ")
            targets.append(p.query(f"max by (segment) (driftd_calibration_{statistic}{{{SELECTOR}}})",
                                   f"{name} {{{{segment}}}}", ref_id=chr(ord("A") + len(targets))))
            targets.append(p.query(
                f"max by (segment) (driftd_calibration_{statistic}_baseline{{{SELECTOR}}})",
                f"{name}, baseline {{{{segment}}}}", ref_id=chr(ord("A") + len(targets))))
        dashboard = dashboard.with_panel(p.timeseries(
            title, f"{title} of each window with labels, next to the baseline's.", targets,
            unit=unit, width=6, links=[runbook["DriftdCalibrationDrift"]],
        ))

    return (
        dashboard.with_row(dash.Row("Attribution"))
        .with_panel(p.timeseries(
            "Attribution rank agreement (NDCG)",
            "Agreement of the window's SHAP importance ranking with the baseline's; below "
            f"{th.attribution_ndcg:g} the model relies on different features.",
            [p.query(f"min by (segment) (driftd_attribution_ndcg{{{SELECTOR}}})", "{{segment}}")],
            unit=units.NoUnit, width=8, min_value=0, max_value=1,
            thresholds=p.below(th.attribution_ndcg),
            links=[runbook["DriftdAttributionDrift"], app_model],
        ))
        .with_panel(p.timeseries(
            "Attribution change by feature",
            "Relative change of each feature's mean |SHAP| against the baseline.",
            [p.query(f"max by (feature) (driftd_attribution_change_ratio{{{FEATURES}}})",
                     "{{feature}}")],
            unit=units.PercentUnit, width=16, data_links=[app_feature],
        ))
    )
