"""Every metric driftd exports, on a registry that the caller owns.

Two kinds live here:

* pipeline counters, gauges and histograms (``prometheus_client`` objects updated
  as events flow), held by :class:`PipelineMetrics`;
* per-window results, exported by :class:`WindowCollector` from the latest
  :class:`~monitor.results.WindowReport` of each (model, version, segment). The
  number of keys it holds is capped, so a flood of model or segment names cannot
  blow up the series count; keys past the cap are counted in
  ``driftd_series_capped_total`` and not exported.

Names follow Prometheus conventions: ``driftd_`` prefix, base units, ``_total`` for
counters, ``_ratio`` for 0..1 shares. ``docs/metrics.md`` lists them all.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.alarm_metrics import LastAlarmCollector
from monitor.results import WindowKey, WindowReport

__all__ = [
    "CALIBRATION_STATISTICS",
    "PERFORMANCE_METRICS",
    "PipelineMetrics",
    "WindowCollector",
    "create_metrics",
    "observe_many",
]

# Keys of WindowReport.calibration / baseline_calibration; each is exported as
# driftd_calibration_<key> and driftd_calibration_<key>_baseline.
CALIBRATION_STATISTICS = {
    "ece_equal_width": "expected calibration error, 10 equal-width bins",
    "ece_equal_mass": "expected calibration error, 10 equal-mass bins",
    "brier_score": "Brier score",
    "brier_reliability": "reliability term of the Brier decomposition",
    "brier_resolution": "resolution term of the Brier decomposition",
    "brier_uncertainty": "uncertainty term of the Brier decomposition",
    "slope": "calibration slope (logistic recalibration)",
    "intercept": "calibration intercept (logistic recalibration)",
}
# Keys of WindowReport.performance / estimated_performance (label "metric").
PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse")

_DELAY_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_FAST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PipelineMetrics:
    """Pipeline health: throughput, bad input, lag, windows, store, explanations."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "driftd_events", "Prediction events accepted into windows.", ["model", "version"],
            registry=registry,
        )
        self.invalid_events = Counter(
            "driftd_invalid_events", "Messages rejected and dead-lettered, by reason.", ["reason"],
            registry=registry,
        )
        self.dead_letter_errors = Counter(
            "driftd_dead_letter_errors", "Dead-letter messages that could not be published.",
            registry=registry,
        )
        self.dead_letter_truncated = Counter(
            "driftd_dead_letter_truncated",
            "Dead letters whose value was too large to publish and was cut to a preview.",
            registry=registry,
        )
        self.late_events = Counter(
            "driftd_late_events", "Events later than the watermark plus allowed lateness.", ["model"],
            registry=registry,
        )
        self.feature_type_errors = Counter(
            "driftd_feature_type_errors",
            "Feature values of the wrong type for the baseline (counted as missing).",
            ["model"], registry=registry,
        )
        self.capacity_dropped = Counter(
            "driftd_capacity_dropped",
            "Items refused because a configured cap was reached, by cap.", ["cap"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "driftd_consumer_lag", "Messages behind the end of each assigned partition.",
            ["topic", "partition"], registry=registry,
        )
        self.assigned_partitions = Gauge(
            "driftd_consumer_assigned_partitions", "Partitions assigned to this consumer.",
            registry=registry,
        )
        self.partitions_paused = Gauge(
            "driftd_partitions_paused",
            "Predictions partitions paused because they ran more than windows.max_lead_seconds ahead in event time.",
            registry=registry,
        )
        self.partitions_idle = Gauge(
            "driftd_partitions_idle",
            "Predictions partitions read to their end and quiet for windows.idle_timeout_seconds (not holding watermarks).",
            registry=registry,
        )
        self.event_time_lead = Gauge(
            "driftd_event_time_lead_seconds",
            "Event-time spread between the fastest and the slowest active predictions partition.",
            registry=registry,
        )
        self.offset_resets = Counter(
            "driftd_consumer_offset_resets",
            "Partitions found shorter than their checkpoint offset (topic recreated) and read from the start.",
            registry=registry,
        )
        self.last_poll = Gauge(
            "driftd_last_poll_timestamp_seconds", "Wall time of the last successful poll.",
            registry=registry,
        )
        self.windows_closed = Counter(
            "driftd_windows_closed", "Windows closed and evaluated.", ["model"], registry=registry,
        )
        self.open_windows = Gauge(
            "driftd_open_windows", "Windows currently open.", registry=registry,
        )
        self.window_close_delay = Histogram(
            "driftd_window_close_delay_seconds",
            "Wall time between a window's end and its close.", buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        self.window_compute = Histogram(
            "driftd_window_compute_seconds", "Time to compute a closed window's statistics.",
            buckets=_FAST_BUCKETS, registry=registry,
        )
        self.batch_duration = Histogram(
            "driftd_batch_duration_seconds", "Time to process one polled batch.",
            buckets=_FAST_BUCKETS, registry=registry,
        )
        self.store_errors = Counter(
            "driftd_store_errors", "Store operations that failed, by operation.", ["operation"],
            registry=registry,
        )
        self.store_pending = Gauge(
            "driftd_store_pending_writes", "Results waiting to be written to the store.",
            registry=registry,
        )
        self.checkpoints = Counter(
            "driftd_checkpoints", "Checkpoints written.", registry=registry,
        )
        self.last_checkpoint = Gauge(
            "driftd_last_checkpoint_timestamp_seconds", "Wall time of the last checkpoint.",
            registry=registry,
        )
        self.ready = Gauge(
            "driftd_ready", "1 when driftd is consuming and its store is reachable.",
            registry=registry,
        )
        # Ground truth.
        self.labels = Counter(
            "driftd_labels", "Label events by outcome (joined, early, duplicate, unknown).",
            ["outcome"], registry=registry,
        )
        self.label_join_evictions = Counter(
            "driftd_label_join_evictions", "Pending predictions evicted before their label, by reason.",
            ["reason"], registry=registry,
        )
        self.sequential_excluded = Counter(
            "driftd_sequential_excluded",
            "Joined errors left out of the sequential detectors: their label came after labels.settle_seconds.",
            ["model"], registry=registry,
        )
        self.checkpoint_restore_failures = Counter(
            "driftd_checkpoint_restore_failures",
            "Saved checkpoints that could not be read at start (the daemon stays not ready unless --reset-state).",
            registry=registry,
        )
        self.late_label_windows_missing = Counter(
            "driftd_late_label_windows_missing",
            "Label updates for a closed window found neither in memory nor in the store (not applied).",
            registry=registry,
        )
        self.label_join_pending = Gauge(
            "driftd_label_join_pending", "Predictions waiting for their label.", registry=registry,
        )
        self.concept_drift_alarms = Counter(
            "driftd_concept_drift_alarms", "Sequential detector alarms on the error stream.",
            ["model", "version", "detector"], registry=registry,
        )
        self.last_alarm = LastAlarmCollector()
        registry.register(self.last_alarm)
        # Explanations.
        self.explain_queue_depth = Gauge(
            "driftd_explain_queue_depth", "Predictions waiting to be explained.", registry=registry,
        )
        self.explain_queue_capacity = Gauge(
            "driftd_explain_queue_capacity", "Capacity of the explanation queue.", registry=registry,
        )
        self.explain_dropped = Counter(
            "driftd_explain_dropped", "Explanation requests dropped, by reason.",
            ["model", "reason"], registry=registry,
        )
        self.explanations = Counter(
            "driftd_explanations", "Explanations computed and stored.", ["model"], registry=registry,
        )
        self.explain_published = Counter(
            "driftd_explain_published", "Predictions published as explanation tasks (explain.mode kafka).",
            ["model"], registry=registry,
        )
        self.explain_latency = Histogram(
            "driftd_explain_latency_seconds", "Time from event to stored explanation.",
            buckets=_DELAY_BUCKETS, registry=registry,
        )
        self.incidents = Counter(
            "driftd_alert_notifications", "Alertmanager notifications received, by status.",
            ["status"], registry=registry,
        )
        self.retrain_requests = Counter(
            "driftd_retrain_requests", "Retrain requests emitted (stored, once per model and cooldown), by reason.",
            ["model", "reason"], registry=registry,
        )
        self.retrain_failures = Counter(
            "driftd_retrain_failures", "Retrain requests not stored or not delivered yet, by stage (store, kafka, webhook, queue).",
            ["stage"], registry=registry,
        )


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Observe every value of ``values`` in ``histogram``: the same result as calling
    ``observe`` per value, at the cost of one increment per bucket.

    prometheus_client has no bulk observe; this adds the counts to the per-bucket
    values ``Histogram.observe`` itself increments (and falls back to ``observe``
    per value if a future version stores them differently). NaN is skipped.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(buckets) != len(bounds):
        for value in values.tolist():
            histogram.observe(value)
        return
    # observe() counts a value in the first bucket whose upper bound is >= the value.
    counts = np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left"),
                         minlength=len(bounds) + 1)
    total.inc(float(values.sum()))
    for index in np.flatnonzero(counts[: len(bounds)]).tolist():
        buckets[index].inc(int(counts[index]))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class WindowCollector(Collector):
    """Exports the latest closed window of each (model, version, segment).

    Parameters
    ----------
    max_keys
        Cap on (model, version, segment) keys exported; further keys are refused and
        counted in ``driftd_series_capped_total``.
    """

    def __init__(self, max_keys: int, capped: Counter | None = None) -> None:
        self.max_keys = max_keys
        self._capped = capped
        self._latest: OrderedDict[WindowKey, WindowReport] = OrderedDict()
        # Labels and explanations arrive after a window closed: their sections are
        # exported from the newest window that has them, not only from the newest window.
        self._labelled: dict[WindowKey, WindowReport] = {}
        self._attributed: dict[WindowKey, WindowReport] = {}
        self._lock = threading.Lock()

    def publish(self, report: WindowReport) -> bool:
        """Make ``report`` the exported state of its key; False when the cap refused it."""
        with self._lock:
            if report.key not in self._latest and len(self._latest) >= self.max_keys:
                if self._capped is not None:
                    self._capped.inc()
                return False
            for table, has_section in (
                (self._latest, True),
                (self._labelled, report.n_labels > 0),
                (self._attributed, report.attribution is not None),
            ):
                current = table.get(report.key)
                if has_section and (current is None or report.window_end >= current.window_end):
                    table[report.key] = report
            return True

    def latest(self, key: WindowKey) -> WindowReport | None:
        with self._lock:
            return self._latest.get(key)

    def reports(self) -> list[WindowReport]:
        with self._lock:
            return list(self._latest.values())

    def _sections(self) -> list[tuple[WindowReport, WindowReport | None, WindowReport | None]]:
        with self._lock:
            return [(r, self._labelled.get(k), self._attributed.get(k)) for k, r in self._latest.items()]

    def collect(self) -> Iterator[GaugeMetricFamily]:  # noqa: C901 - one family after another
        sections = self._sections()
        key_labels = ["model", "version", "segment"]
        feat_labels = key_labels + ["feature", "method"]

        def family(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        score = family("driftd_feature_drift_score", "Drift effect size of a feature in the last closed window.", feat_labels)
        p_value = family("driftd_feature_drift_p_value", "Uncorrected p-value of a feature's drift test.", feat_labels)
        threshold = family("driftd_feature_drift_threshold", "Effect-size threshold of a feature's drift test.", feat_labels)
        drifted = family("driftd_feature_drifted", "1 when a feature drifted in the last closed window.", feat_labels)
        pred_score = family("driftd_prediction_drift_score", "Drift effect size of the model's predictions.", key_labels + ["method"])
        pred_drifted = family("driftd_prediction_drifted", "1 when the predictions drifted.", key_labels + ["method"])
        label_score = family("driftd_label_drift_score", "Drift effect size of the labels (prior drift).", key_labels + ["method"])
        label_drifted = family("driftd_label_drifted", "1 when the labels drifted.", key_labels + ["method"])
        multi_score = family("driftd_multivariate_drift_score", "Multivariate drift effect size of the numeric features.", key_labels + ["method"])
        multi_drifted = family("driftd_multivariate_drifted", "1 when the numeric features drifted jointly.", key_labels + ["method"])
        share = family("driftd_model_drift_share_ratio", "Share of a model's features that drifted.", key_labels)
        weighted = family("driftd_model_drift_score", "Importance-weighted share of drifted features.", key_labels)
        model_drifted = family("driftd_model_drifted", "1 when the drift share passed its threshold.", key_labels)
        missing = family("driftd_feature_missing_ratio", "Share of missing values of a feature.", key_labels + ["feature"])
        missing_base = family("driftd_feature_missing_baseline_ratio", "Baseline share of missing values of a feature.", key_labels + ["feature"])
        unseen = family("driftd_feature_unseen_ratio", "Share of values of a categorical feature unseen in the baseline.", key_labels + ["feature"])
        unseen_excess = family(
            "driftd_feature_unseen_excess_ratio",
            "Unseen share of a categorical feature minus the share the baseline expects (Good-Turing).",
            key_labels + ["feature"],
        )
        nonfinite = family("driftd_feature_nonfinite_ratio", "Share of values of a numeric feature that were +inf or -inf.", key_labels + ["feature"])
        events = family("driftd_window_events", "Events in the last closed window.", key_labels)
        window_end = family("driftd_window_end_timestamp_seconds", "Event-time end of the last closed window.", key_labels)
        coverage = family("driftd_label_coverage_ratio", "Share of the window's predictions whose label has arrived.", key_labels)
        perf = family("driftd_performance", "Realised performance of the last window with labels.", key_labels + ["metric"])
        perf_lower = family("driftd_performance_lower", "Lower 95% confidence bound of realised performance.", key_labels + ["metric"])
        perf_upper = family("driftd_performance_upper", "Upper 95% confidence bound of realised performance.", key_labels + ["metric"])
        perf_error = family("driftd_performance_binning_error", "Bound on the error of a metric from binned scores (ROC AUC), inside its interval.", key_labels + ["metric"])
        perf_base = family("driftd_performance_baseline", "Reference performance from the baseline.", key_labels + ["metric"])
        estimated = family("driftd_estimated_performance", "Performance estimated from scores before labels (CBPE).", key_labels + ["metric"])
        calib = {
            name: family(f"driftd_calibration_{name}", f"Calibration: {doc} (last window with labels).", key_labels)
            for name, doc in CALIBRATION_STATISTICS.items()
        }
        calib_base = {
            name: family(f"driftd_calibration_{name}_baseline", f"Calibration: {doc} (baseline).", key_labels)
            for name, doc in CALIBRATION_STATISTICS.items()
        }
        ndcg = family("driftd_attribution_ndcg", "Rank agreement (NDCG) of window vs baseline SHAP importances.", key_labels)
        attr_drifted = family("driftd_attribution_drifted", "1 when attribution drift was detected.", key_labels)
        attr_change = family("driftd_attribution_change_ratio", "Relative change of a feature's mean |SHAP| vs baseline.", key_labels + ["feature"])

        for report, labelled, attributed in sections:
            key = list(report.key)
            events.add_metric(key, report.n_events)
            window_end.add_metric(key, report.window_end)
            share.add_metric(key, report.drift_share)
            weighted.add_metric(key, report.drift_score)
            model_drifted.add_metric(key, float(report.model_drifted))
            for result in report.features:
                labels = key + [result.feature, result.method]
                if _finite(result.score):
                    score.add_metric(labels, result.score)
                if _finite(result.p_value):
                    p_value.add_metric(labels, result.p_value)
                threshold.add_metric(labels, result.threshold)
                drifted.add_metric(labels, float(result.drifted))
            for results, fam_score, fam_flag in (
                (report.prediction, pred_score, pred_drifted),
                (labelled.label if labelled else [], label_score, label_drifted),
                (report.multivariate, multi_score, multi_drifted),
            ):
                for result in results:
                    if _finite(result.score):
                        fam_score.add_metric(key + [result.method], result.score)
                    fam_flag.add_metric(key + [result.method], float(result.drifted))
            for fam, ratios in ((missing, report.missing_ratio), (missing_base, report.baseline_missing_ratio),
                                (unseen, report.unseen_ratio), (nonfinite, report.nonfinite_ratio)):
                for feature, value in ratios.items():
                    fam.add_metric(key + [feature], value)
            for feature, value in report.unseen_ratio.items():
                unseen_excess.add_metric(key + [feature], value - report.unseen_expected_ratio.get(feature, 0.0))
            coverage.add_metric(key, (labelled or report).label_coverage)
            for metric, value in (labelled.performance if labelled else {}).items():
                for fam, number in zip((perf, perf_lower, perf_upper, perf_error), value):
                    if _finite(number):
                        fam.add_metric(key + [metric], number)
            for metric, value in report.baseline_performance.items():
                if _finite(value):
                    perf_base.add_metric(key + [metric], value)
            for metric, value in report.estimated_performance.items():
                if _finite(value.value):
                    estimated.add_metric(key + [metric], value.value)
            for statistic, value in (labelled.calibration if labelled else {}).items():
                if statistic in calib and _finite(value):
                    calib[statistic].add_metric(key, value)
            for statistic, value in report.baseline_calibration.items():
                if statistic in calib_base and _finite(value):
                    calib_base[statistic].add_metric(key, value)
            if attributed is not None and attributed.attribution is not None:
                ndcg.add_metric(key, attributed.attribution.ndcg)
                attr_drifted.add_metric(key, float(attributed.attribution.drifted))
                for feature, value in attributed.attribution.relative_change.items():
                    if _finite(value):
                        attr_change.add_metric(key + [feature], value)

        yield from (
            score, p_value, threshold, drifted, pred_score, pred_drifted, label_score,
            label_drifted, multi_score, multi_drifted, share, weighted, model_drifted, missing, missing_base, unseen, unseen_excess, nonfinite,
            events, window_end, coverage, perf, perf_lower, perf_upper, perf_error, perf_base, estimated,
            *calib.values(), *calib_base.values(), ndcg, attr_drifted, attr_change,
        )


def create_metrics(max_keys: int) -> tuple[CollectorRegistry, PipelineMetrics, WindowCollector]:
    """A fresh registry with the pipeline metrics and the window collector registered."""
    registry = CollectorRegistry()
    pipeline = PipelineMetrics(registry)
    capped = Counter(
        "driftd_series_capped",
        "Window keys (model, version, segment) not exported because the cap was reached.",
        registry=registry,
    )
    windows = WindowCollector(max_keys=max_keys, capped=capped)
    registry.register(windows)
    return registry, pipeline, windows


def describe() -> str:
    """``docs/metrics.md``: every exported metric with its type, labels and help, as Markdown."""
    from detectors.base import DriftResult
    from monitor.results import AttributionSummary, MetricValue

    registry, pipeline, windows = create_metrics(max_keys=1)
    flagged = DriftResult("ks", "f", 0.5, 0.01, 0.1, True)
    windows.publish(WindowReport(
        WindowKey("m", "v", ""), 0.0, 300.0, 1, features=[flagged], prediction=[flagged], label=[flagged], multivariate=[flagged],
        missing_ratio={"f": 0.0}, baseline_missing_ratio={"f": 0.0}, unseen_ratio={"f": 0.0},
        performance={"accuracy": MetricValue(1.0, 0.5, 1.0), "roc_auc": MetricValue(0.9, 0.8, 1.0, 0.01)}, baseline_performance={"accuracy": 1.0},
        estimated_performance={"accuracy": MetricValue(1.0)},
        calibration=dict.fromkeys(CALIBRATION_STATISTICS, 0.0), baseline_calibration=dict.fromkeys(CALIBRATION_STATISTICS, 0.0),
        attribution=AttributionSummary(1.0, False, 0.9, 1, {"f": 1.0}, {"f": 0.0}), n_labels=1,
    ))
    pipeline.last_alarm.record("m", "v", "", "adwin", 0.0)
    declared = {
        metric._name: list(metric._labelnames)  # noqa: SLF001 - prometheus_client keeps no public accessor
        for metric in vars(pipeline).values() if hasattr(metric, "_labelnames")
    }
    lines = [
        "# Metrics",
        "",
        "Every metric driftd exports on `/metrics` (generated by `monitor.metrics.describe()`;",
        "`tests/core/test_core_metrics.py` keeps this page in step with the code).",
        "Per-window gauges hold the latest closed window of each (model, version, segment).",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = declared.get(family.name)
        if labels is None:
            labels = sorted({label for sample in family.samples for label in sample.labels} - {"le"})
        lines.append(f"| `{name}` | {family.type} | {', '.join(labels) or '-'} | {family.documentation} |")
    return "\n".join(lines) + "\n"
