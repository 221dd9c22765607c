"""Every driftd alert and recording rule, built from the configuration and the detector registry.

Each :class:`AlertSpec` carries its PromQL, severity, texts and the unit-test cases
that show it firing and staying quiet, so rules and their ``promtool`` tests cannot
drift apart (:mod:`alerts.rules` renders the rules, :mod:`alerts.ruletests` the tests).

Severities: ``critical`` pages (model drift, performance drop, driftd down),
``warning`` opens a ticket, ``info`` is recorded but notifies nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from alerts.errors import AlertsError
from alerts.templating import WINDOW_END_METRIC, Renderer
from detectors.registry import REGISTRY
from monitor import events
from monitor.config import Settings
from monitor.metrics import PERFORMANCE_METRICS

__all__ = [
    "AlertSpec",
    "Case",
    "RecordingRule",
    "RuleOptions",
    "Series",
    "build_alerts",
    "build_recording_rules",
    "parse_duration",
]

Severity = Literal["critical", "warning", "info"]
Scope = Literal["feature", "model", "pipeline"]

# Performance metrics where a larger value is worse; every other metric in
# PERFORMANCE_METRICS drops when the model gets worse.
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})
# Reasons of driftd_invalid_events_total that mean "the producer broke the event contract".
SCHEMA_REASONS = (events.SCHEMA, events.NOT_JSON, events.BAD_TIMESTAMP, events.TOO_LARGE)

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


def parse_duration(text: str, key: str = "duration") -> float:
    """Seconds in a Prometheus duration such as ``5m`` or ``1h30m``.

    >>> parse_duration("1h30m")
    5400.0
    """
    if not text or _DURATION.sub("", text) != "":
        raise AlertsError(f"{key}: {text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return float(sum(int(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text)))


@dataclass(frozen=True)
class RuleOptions:
    """Thresholds and windows of the generated rules (defaults are documented in docs/alerts.md).

    ``for_duration`` and ``keep_firing_for`` default to the ``alerts`` section of the
    configuration (see :meth:`from_settings`).
    """

    job: str = "driftd"
    for_duration: str = "5m"
    keep_firing_for: str = "10m"
    rate_window: str = "5m"
    performance_tolerance: float = 0.05
    ece_increase: float = 0.05
    missing_increase: float = 0.10
    unseen_ratio: float = 0.05
    dead_letter_ratio: float = 0.01
    consumer_lag: float = 10_000
    explain_queue_ratio: float = 0.9

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> RuleOptions:
        options = cls(
            for_duration=settings.alerts.for_duration,
            keep_firing_for=settings.alerts.keep_firing_for,
        )
        options = replace(options, **overrides)  # type: ignore[arg-type]
        options.validate()
        return options

    def validate(self) -> None:
        parse_duration(self.for_duration, "alerts.for_duration")
        parse_duration(self.keep_firing_for, "alerts.keep_firing_for")
        if parse_duration(self.rate_window, "rate_window") <= 0:
            raise AlertsError(f"rate_window: must be longer than 0 (got {self.rate_window!r})")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-.]*", self.job):
            raise AlertsError(f"job: {self.job!r} is not a usable Prometheus job name")


@dataclass(frozen=True)
class Series:
    """One input series of a unit test.

    ``firing``/``quiet`` give the value while the alert should fire / stay quiet
    (``None``: the series does not exist). For ``counter`` series they are the
    increase per second instead.
    """

    selector: str
    firing: float | None
    quiet: float | None
    counter: bool = False


@dataclass(frozen=True)
class Case:
    """Inputs under which an alert fires with ``labels`` and ``value``, and stays quiet."""

    series: tuple[Series, ...]
    labels: dict[str, str]
    value: float
    # Value of the alert's WINDOW_END_METRIC series (added by the test generator when
    # no series of that name is listed); None when the alert has no window.
    window_end: float | None = None


@dataclass(frozen=True)
class AlertSpec:
    """One alerting rule, its texts and its unit-test cases."""

    name: str
    group: str
    severity: Severity
    scope: Scope
    expr: str
    summary: str
    describe: Callable[[Renderer], str]
    cases: tuple[Case, ...]
    keep_firing: bool = False


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    group: str = "driftd-recording"


@dataclass(frozen=True)
class _Context:
    settings: Settings
    options: RuleOptions
    window_end: float = 1_700_000_000.0


def sel(metric: str, labels: dict[str, str]) -> str:
    """A series selector ``metric{a="b",...}`` (labels with empty values left out)."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items() if v != "")
    return f"{metric}{{{inner}}}"


def _rate_suffix(options: RuleOptions) -> str:
    return f"rate{options.rate_window}"


def build_recording_rules(settings: Settings, options: RuleOptions) -> list[RecordingRule]:
    """Recording rules for the expressions that alerts and dashboards share."""
    del settings  # thresholds live in the alerts; kept for a uniform signature
    w = options.rate_window
    rate = _rate_suffix(options)
    # One term per registered method: the score over its threshold, oriented so that
    # a ratio above 1 always means "past the threshold".
    margin_terms = []
    for name in sorted(REGISTRY):
        score = f'driftd_feature_drift_score{{method="{name}"}}'
        threshold = f'driftd_feature_drift_threshold{{method="{name}"}}'
        ratio = f"{score} / {threshold}" if REGISTRY[name].higher_is_drift else f"{threshold} / {score}"
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
        RecordingRule("driftd:window_age:seconds", f"time() - {WINDOW_END_METRIC}"),
        RecordingRule("driftd:consumer_lag:sum", "sum by (job, instance, topic) (driftd_consumer_lag)"),
        RecordingRule(
            "driftd:explain_queue:utilisation_ratio",
            "driftd_explain_queue_depth / driftd_explain_queue_capacity",
        ),
    ]


def _where(r: Renderer, feature: bool = False) -> str:
    text = f"model {r.label('model')} version {r.label('version')} (segment '{r.label('segment')}')"
    return f"feature {r.label('feature')} of {text}" if feature else text


def build_alerts(settings: Settings, options: RuleOptions) -> list[AlertSpec]:
    """Every alert, with thresholds from ``settings`` and ``options``."""
    ctx = _Context(settings, options)
    return [
        *_drift_alerts(ctx),
        *_quality_alerts(ctx),
        *_pipeline_alerts(ctx),
    ]


_BASE = {"job": "", "instance": "driftd-0:9108"}


def _base(ctx: _Context) -> dict[str, str]:
    return {**_BASE, "job": ctx.options.job}


def _model(ctx: _Context, segment: str = "region=eu") -> dict[str, str]:
    return {**_base(ctx), "model": "fraud", "version": "v1", "segment": segment}


def _drift_alerts(ctx: _Context) -> list[AlertSpec]:
    settings, options = ctx.settings, ctx.options
    key = "job, instance, model, version, segment"
    feature_cases = []
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        threshold = settings.drift.thresholds.get(name, spec.default_threshold)
        high, low = threshold * 2, threshold / 2
        labels = {**_model(ctx, segment=""), "feature": "amount", "method": name}
        feature_cases.append(Case(
            series=(
                Series(sel("driftd_feature_drift_score", labels), high if spec.higher_is_drift else low,
                       low if spec.higher_is_drift else high),
                Series(sel("driftd_feature_drift_threshold", labels), threshold, threshold),
                Series(sel("driftd_feature_drifted", labels), 1, 0),
            ),
            labels=labels, value=2.0, window_end=ctx.window_end,
        ))
    share = settings.drift.drift_share_threshold
    model = _model(ctx)
    pred_method = sorted(REGISTRY)[0]
    pred = {**model, "method": pred_method}
    higher = [m for m in PERFORMANCE_METRICS if m not in LOWER_IS_BETTER]
    lower = [m for m in PERFORMANCE_METRICS if m in LOWER_IS_BETTER]
    tol = options.performance_tolerance
    perf_key = f"{key}, metric"

    def perf_case(metric: str, firing: tuple[float, float, float], quiet: tuple[float, float, float],
                  baseline: float) -> Case:
        labels = {**model, "metric": metric}
        names = ("driftd_performance", "driftd_performance_lower", "driftd_performance_upper")
        return Case(
            series=(
                *(Series(sel(n, labels), f, q) for n, f, q in zip(names, firing, quiet, strict=True)),
                Series(sel("driftd_performance_baseline", labels), baseline, baseline),
            ),
            labels=labels, value=firing[0], window_end=ctx.window_end,
        )

    return [
        AlertSpec(
            name="DriftdFeatureDrift", group="driftd-drift", severity="warning", scope="feature",
            expr=f"driftd:feature_drift_score:threshold_ratio\nand on ({key}, feature, method)\n(driftd_feature_drifted == 1)",
            summary="A feature's input distribution drifted from its baseline",
            describe=lambda r: (
                f"The input distribution of {_where(r, feature=True)} drifted in the last closed "
                f"window: its {r.label('method')} score is {r.value('%.2f')} times its threshold."
            ),
            cases=tuple(feature_cases), keep_firing=True,
        ),
        AlertSpec(
            name="DriftdModelDrift", group="driftd-drift", severity="critical", scope="model",
            expr=f"driftd_model_drift_share_ratio >= {share:g}",
            summary="A large share of a model's features drifted",
            describe=lambda r: (
                f"A share of {r.value('%.2f')} of the features of {_where(r)} drifted in the last "
                f"closed window (alert at {share:g}); its predictions may no longer be trustworthy."
            ),
            cases=(Case(
                series=(Series(sel("driftd_model_drift_share_ratio", model), min(1.0, share + 0.25), share / 2),),
                labels=model, value=min(1.0, share + 0.25), window_end=ctx.window_end,
            ),),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdPredictionDrift", group="driftd-drift", severity="warning", scope="model",
            expr=f"driftd_prediction_drift_score\nand on ({key}, method)\n(driftd_prediction_drifted == 1)",
            summary="The distribution of a model's predictions drifted",
            describe=lambda r: (
                f"The predictions of {_where(r)} drifted in the last closed window "
                f"({r.label('method')} score {r.value()})."
            ),
            cases=(Case(
                series=(
                    Series(sel("driftd_prediction_drift_score", pred), 0.4, 0.01),
                    Series(sel("driftd_prediction_drifted", pred), 1, 0),
                ),
                labels=pred, value=0.4, window_end=ctx.window_end,
            ),),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdPerformanceDrop", group="driftd-drift", severity="critical", scope="model",
            expr=(
                f'(driftd_performance{{metric=~"{"|".join(higher)}"}}\n and on ({perf_key})\n'
                f" (driftd_performance_upper < driftd_performance_baseline * {1 - tol:g}))\nor\n"
                f'(driftd_performance{{metric=~"{"|".join(lower)}"}}\n and on ({perf_key})\n'
                f" (driftd_performance_lower > driftd_performance_baseline * {1 + tol:g}))"
            ),
            summary="A model's realised performance dropped below its baseline",
            describe=lambda r: (
                f"Realised {r.label('metric')} of {_where(r)} is {r.value()}: worse than the baseline "
                f"by more than {tol:.0%} beyond its 95% confidence interval."
            ),
            cases=(
                perf_case("accuracy", (0.70, 0.65, 0.75), (0.89, 0.85, 0.93), 0.90),
                perf_case("log_loss", (0.90, 0.80, 1.00), (0.50, 0.45, 0.55), 0.50),
            ),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdCalibrationDrift", group="driftd-drift", severity="warning", scope="model",
            expr=(
                "driftd_calibration_ece_equal_width - driftd_calibration_ece_equal_width_baseline"
                f" > {options.ece_increase:g}"
            ),
            summary="A model's probability calibration got worse than its baseline",
            describe=lambda r: (
                f"The expected calibration error of {_where(r)} is {r.value()} above its baseline "
                f"(alert above {options.ece_increase:g}); scores no longer mean what they say."
            ),
            cases=(Case(
                series=(
                    Series(sel("driftd_calibration_ece_equal_width", model), 0.15, 0.04),
                    Series(sel("driftd_calibration_ece_equal_width_baseline", model), 0.03, 0.03),
                ),
                labels=model, value=0.12, window_end=ctx.window_end,
            ),),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdAttributionDrift", group="driftd-drift", severity="warning", scope="model",
            expr=f"driftd_attribution_ndcg\nand on ({key})\n(driftd_attribution_drifted == 1)",
            summary="The features a model relies on changed (SHAP attribution drift)",
            describe=lambda r: (
                f"Mean |SHAP| importances of {_where(r)} no longer rank like the baseline's "
                f"(NDCG {r.value()}): the model relies on different features."
            ),
            cases=(Case(
                series=(
                    Series(sel("driftd_attribution_ndcg", model), 0.6, 0.97),
                    Series(sel("driftd_attribution_drifted", model), 1, 0),
                ),
                labels=model, value=0.6, window_end=ctx.window_end,
            ),),
            keep_firing=True,
        ),
    ]


def _quality_alerts(ctx: _Context) -> list[AlertSpec]:
    options = ctx.options
    rate = _rate_suffix(options)
    feature = {**_model(ctx), "feature": "country"}
    reasons = "|".join(SCHEMA_REASONS)
    model_only = {**_base(ctx), "model": "fraud"}
    return [
        AlertSpec(
            name="DriftdMissingValueSurge", group="driftd-quality", severity="warning", scope="feature",
            expr=(
                "driftd_feature_missing_ratio - driftd_feature_missing_baseline_ratio"
                f" > {options.missing_increase:g}"
            ),
            summary="A feature is missing far more often than in the baseline",
            describe=lambda r: (
                f"The share of missing values of {_where(r, feature=True)} is {r.value()} above its "
                f"baseline (alert above {options.missing_increase:g})."
            ),
            cases=(Case(
                series=(
                    Series(sel("driftd_feature_missing_ratio", feature), 0.35, 0.03),
                    Series(sel("driftd_feature_missing_baseline_ratio", feature), 0.02, 0.02),
                ),
                labels=feature, value=0.33, window_end=ctx.window_end,
            ),),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdUnseenCategories", group="driftd-quality", severity="warning", scope="feature",
            expr=f"driftd_feature_unseen_ratio > {options.unseen_ratio:g}",
            summary="A categorical feature carries values never seen in the baseline",
            describe=lambda r: (
                f"{r.value()} of the values of {_where(r, feature=True)} were never seen in the "
                f"baseline (alert above {options.unseen_ratio:g})."
            ),
            cases=(Case(
                series=(Series(sel("driftd_feature_unseen_ratio", feature), 0.2, 0.0),),
                labels=feature, value=0.2, window_end=ctx.window_end,
            ),),
            keep_firing=True,
        ),
        AlertSpec(
            name="DriftdSchemaViolations", group="driftd-quality", severity="warning", scope="pipeline",
            expr=f'driftd:invalid_events:{rate}{{reason=~"{reasons}"}} > 0',
            summary="Producers send events that break the event contract",
            describe=lambda r: (
                f"driftd at {r.label('instance')} dead-letters {r.value()} events/s with reason "
                f"{r.label('reason')}: a producer breaks the event contract."
            ),
            cases=(Case(
                series=(Series(sel("driftd_invalid_events_total", {**_base(ctx), "reason": events.SCHEMA}),
                               0.5, 0, counter=True),),
                labels={**_base(ctx), "reason": events.SCHEMA}, value=0.5,
            ),),
        ),
        AlertSpec(
            name="DriftdFeatureTypeErrors", group="driftd-quality", severity="warning", scope="model",
            expr=f"sum by (job, instance, model) (rate(driftd_feature_type_errors_total[{options.rate_window}])) > 0",
            summary="Feature values arrive with the wrong type for the baseline",
            describe=lambda r: (
                f"{r.value()} feature values/s of model {r.label('model')} have the wrong type for "
                f"its baseline and are counted as missing."
            ),
            cases=(Case(
                series=(Series(sel("driftd_feature_type_errors_total", model_only), 2.0, 0, counter=True),),
                labels=model_only, value=2.0,
            ),),
        ),
    ]


def _pipeline_alerts(ctx: _Context) -> list[AlertSpec]:
    settings, options = ctx.settings, ctx.options
    job, w = options.job, options.rate_window
    rate = _rate_suffix(options)
    base = _base(ctx)
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
        return Series(sel("driftd_events_total", {**base, "model": name, "version": "v1"}), firing, 100.0,
                      counter=True)

    others = tuple(events_of(name, 100.0) for name in configured if name != subject)
    up = Series(sel("up", base), 1, 1)
    no_event_cases = [Case(
        series=(events_of(subject, 0.0), up, *others),
        labels={**base, "model": subject}, value=0.0,
    )]
    if configured:
        no_event_cases.append(Case(
            series=(events_of(subject, None), up, *others),
            labels={"job": job, "model": subject}, value=1.0,
        ))
    stale_s = 2 * settings.windows.size_seconds + settings.windows.allowed_lateness_seconds
    model = _model(ctx)
    lag = options.consumer_lag
    explain = options.explain_queue_ratio
    return [
        AlertSpec(
            name="DriftdDown", group="driftd-pipeline", severity="critical", scope="pipeline",
            expr=f'up{{job="{job}"}} == 0',
            summary="Prometheus cannot scrape driftd",
            describe=lambda r: (
                f"Prometheus cannot scrape driftd at {r.label('instance')} (job {r.label('job')}): "
                f"no drift is detected and no drift alert can fire for the models it watches."
            ),
            cases=(Case(series=(Series(sel("up", base), 0, 1),), labels=base, value=0.0),),
        ),
        AlertSpec(
            name="DriftdNoEvents", group="driftd-pipeline", severity="warning", scope="model",
            expr="\nor\n".join(no_events),
            summary="No prediction events arrive for a model",
            describe=lambda r: (
                f"No prediction events of model {r.label('model')} reached driftd over the last {w}: "
                f"the serving service stopped logging, or the topic or model name changed."
            ),
            cases=tuple(no_event_cases),
        ),
        AlertSpec(
            name="DriftdStaleWindows", group="driftd-pipeline", severity="warning", scope="model",
            expr=f"driftd:window_age:seconds > {stale_s}",
            summary="driftd closes no new windows for a model",
            describe=lambda r: (
                f"driftd closed no window of {_where(r)} for more than {stale_s} s "
                f"(2 windows + allowed lateness): events stopped, or the watermark is stuck."
            ),
            cases=(Case(
                # Firing: the window end stays at 0; quiet: it keeps up with the clock.
                series=(Series(sel(WINDOW_END_METRIC, model), 0.0, 1.0, counter=True),),
                labels=model, value=float("nan"), window_end=0.0,
            ),),
        ),
        AlertSpec(
            name="DriftdConsumerLagHigh", group="driftd-pipeline", severity="warning", scope="pipeline",
            expr=f"driftd:consumer_lag:sum > {lag:g}",
            summary="driftd falls behind its Kafka topic",
            describe=lambda r: (
                f"driftd at {r.label('instance')} is {r.value('%.0f')} messages behind topic "
                f"{r.label('topic')} (alert above {lag:g}); drift verdicts arrive late."
            ),
            cases=(Case(
                series=tuple(
                    Series(sel("driftd_consumer_lag", {**base, "topic": "predictions", "partition": p}),
                           lag * 0.75, 10)
                    for p in ("0", "1")
                ),
                labels={**base, "topic": "predictions"}, value=lag * 1.5,
            ),),
        ),
        AlertSpec(
            name="DriftdDeadLetterRate", group="driftd-pipeline", severity="warning", scope="pipeline",
            expr=f"driftd:dead_letter:ratio_{rate} > {options.dead_letter_ratio:g}",
            summary="A large share of incoming messages is dead-lettered",
            describe=lambda r: (
                f"driftd at {r.label('instance')} dead-letters {r.value()} of incoming messages "
                f"(alert above {options.dead_letter_ratio:g}); see driftd_invalid_events_total by reason."
            ),
            cases=(Case(
                series=(
                    Series(sel("driftd_events_total", {**base, "model": "fraud", "version": "v1"}), 10.0, 10.0,
                           counter=True),
                    Series(sel("driftd_invalid_events_total", {**base, "reason": events.UNKNOWN_MODEL}), 1.0, 0.0,
                           counter=True),
                ),
                labels=base, value=1 / 11,
            ),),
        ),
        AlertSpec(
            name="DriftdExplainQueueSaturated", group="driftd-pipeline", severity="info", scope="pipeline",
            expr=f"driftd:explain_queue:utilisation_ratio > {explain:g}",
            summary="The SHAP explanation queue is full; explanations are dropped",
            describe=lambda r: (
                f"The explanation queue of driftd at {r.label('instance')} is {r.value()} full "
                f"(alert above {explain:g}); sampled predictions are dropped, ingest is not slowed."
            ),
            cases=(Case(
                series=(
                    Series(sel("driftd_explain_queue_depth", base), 1000, 10),
                    Series(sel("driftd_explain_queue_capacity", base), 1000, 1000),
                ),
                labels=base, value=1.0,
            ),),
        ),
        AlertSpec(
            name="DriftdStoreErrors", group="driftd-pipeline", severity="warning", scope="pipeline",
            expr=f"sum by (job, instance, operation) (rate(driftd_store_errors_total[{w}])) > 0",
            summary="driftd cannot write to its store",
            describe=lambda r: (
                f"Store operation {r.label('operation')} of driftd at {r.label('instance')} fails "
                f"{r.value()} times/s; results and checkpoints may not be saved."
            ),
            cases=(Case(
                series=(Series(sel("driftd_store_errors_total", {**base, "operation": "write_window"}),
                               0.1, 0.0, counter=True),),
                labels={**base, "operation": "write_window"}, value=0.1,
            ),),
        ),
        AlertSpec(
            name="DriftdSeriesCapped", group="driftd-pipeline", severity="info", scope="pipeline",
            expr=f"increase(driftd_series_capped_total[{w}]) > 0",
            summary="Window results are not exported because the series cap was reached",
            describe=lambda r: (
                f"driftd at {r.label('instance')} refused {r.value('%.0f')} model/segment keys over the "
                f"last {w} (limits.max_models / max_segments_per_model)."
            ),
            cases=(Case(
                series=(Series(sel("driftd_series_capped_total", base), 0.1, 0.0, counter=True),),
                labels=base, value=0.1 * parse_duration(w),
            ),),
        ),
    ]
