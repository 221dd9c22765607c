"""The in-process pipeline: decoded batches in, window reports out.

No Kafka here: the consumer (``monitor.consumer``) hands raw message values to
:meth:`Pipeline.process_predictions` / :meth:`Pipeline.process_labels` and gets back
the messages to dead-letter; the pipeline folds valid events into windows, closes
the windows the watermark has passed, evaluates them, and hands every report to its
sinks (metrics exporter, store). Everything it holds is bounded: open windows per
key, recent reports, learning buffers.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from monitor import events, label_updates
from monitor.baselines import BaselineRegistry
from monitor.batch import LabelBatch, PredictionBatch
from monitor.clock import PartitionClocks
from monitor.config import Settings
from monitor.decode import Columns, Rejected, columnarise, decode_labels, decode_predictions
from monitor.evaluate import evaluate_window
from monitor.late_tally import LateTally, late_rejects
from monitor.metrics import PipelineMetrics, WindowCollector
from monitor.results import WindowKey, WindowReport
from monitor.windows import Layout, WindowAggregate, Windows, window_start

__all__ = ["AlarmSink", "Pipeline", "ReportSink"]

log = logging.getLogger(__name__)

OTHER_SEGMENT = "__other__"
_RECENT_REPORTS = 2000


class ReportSink(Protocol):
    def __call__(self, report: WindowReport) -> None: ...


class AlarmSink(Protocol):
    def __call__(self, alarms: list[Any]) -> None: ...


class Pipeline:
    """Windows, baselines and evaluation for every configured model.

    Parameters
    ----------
    settings
        The daemon's settings.
    metrics, collector
        Pipeline metrics and the per-window exporter (see ``monitor.metrics``).
    baselines
        Where baselines come from (files, store, learning).
    sinks
        Called with every new or updated :class:`WindowReport`, in order.
    truth, explainer
        Optional ground-truth join and explanation service (duck-typed, see
        ``monitor.truth`` and ``explainers.service``).
    alarm_sinks
        Called with the new sequential alarms (``monitor.truth.ConceptAlarm``)
        after every batch that raised some, in order (e.g. the store).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: PipelineMetrics,
        collector: WindowCollector,
        baselines: BaselineRegistry,
        sinks: Sequence[ReportSink] = (),
        truth: Any = None,
        explainer: Any = None,
        alarm_sinks: Sequence[AlarmSink] = (),
        stored_report: Any = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.collector = collector
        self.baselines = baselines
        self.sinks = list(sinks)
        self.truth = truth
        self.explainer = explainer
        self.alarm_sinks = list(alarm_sinks)
        # (key, window start) -> the stored WindowReport or None: where labels that join
        # after a window left memory (restart, rebalance, many windows since) find it.
        self.stored_report = stored_report
        self.clocks, self.windows = self._new_windows()
        if truth is not None and hasattr(truth, "prediction_progress"):
            lateness = settings.windows.allowed_lateness_seconds
            truth.prediction_progress = lambda model, version: self.windows.watermark(model, version) + lateness
        self._layouts: dict[tuple[str, str], Layout] = {}
        self._segments: dict[tuple[str, str], set[str]] = {}
        self._seen_models: set[str] = set()
        self._versions: dict[str, set[str]] = {}
        self._configured = {m.name for m in settings.models}
        self.recent: OrderedDict[tuple[WindowKey, float], WindowReport] = OrderedDict()
        self._sequence = 0
        self.late_tally = LateTally()
        for reason in events.INVALID_REASONS:
            metrics.invalid_events.labels(reason=reason)
        for cap in ("models", "versions", "segments", "series"):
            metrics.capacity_dropped.labels(cap=cap)

    # -- ingest --------------------------------------------------------------
    def known_model(self, name: str) -> bool:
        if self._configured:
            return name in self._configured
        if name in self._seen_models:
            return True
        if len(self._seen_models) >= self.settings.limits.max_models:
            self.metrics.capacity_dropped.labels(cap="models").inc()
            return False
        self._seen_models.add(name)
        return True

    def _version_allowed(self, model: str, version: str) -> bool:
        versions = self._versions.setdefault(model, set())
        if version in versions:
            return True
        if len(versions) >= self.settings.limits.max_versions_per_model:
            return False
        versions.add(version)
        return True

    def layout(self, model: str, version: str) -> Layout | None:
        key = (model, version)
        layout = self._layouts.get(key)
        if layout is None:
            baseline = self.baselines.get(model, version)
            if baseline is None:
                return None
            layout = self._layouts[key] = Layout(baseline, self.settings.windows.sample_size, self.settings.limits.max_categories_per_feature)
        return layout

    def next_positions(self, n: int) -> np.ndarray:
        """Running positions for events that do not come from Kafka (in-process use)."""
        positions = np.arange(self._sequence, self._sequence + n, dtype=np.int64)
        self._sequence += n
        return positions

    def process_predictions(self, values: Sequence[bytes | None], positions: Sequence[int] | np.ndarray | None = None) -> list[Rejected]:
        """Fold a polled batch of prediction messages into windows; returns the rejected ones."""
        if positions is None:
            positions = self.next_positions(len(values))
        limits = self.settings.limits
        decoded = decode_predictions(values, positions, limits.max_message_bytes, self.known_model, limits.max_future_seconds)
        for rejected in decoded.rejected:
            self.metrics.invalid_events.labels(reason=rejected.reason).inc()
        for (model, version), group in decoded.groups.items():
            if not self._version_allowed(model, version):
                self.metrics.capacity_dropped.labels(cap="versions").inc(len(group.ids))
                for index in group.indices:
                    rejected = Rejected(index, events.CAPACITY, f"model {model!r} has more than {self.settings.limits.max_versions_per_model} versions")
                    decoded.rejected.append(rejected)
                    self.metrics.invalid_events.labels(reason=events.CAPACITY).inc()
                continue
            layout = self.layout(model, version)
            if layout is None:
                self._learn(model, version, group)
                continue
            config = self.settings.model(model)
            columns = Columns(
                layout.numeric_names, layout.categorical_names,
                config.positive_class if config else "1",
                layout.prediction_edges is not None,
                score_of_prediction=config is not None and config.task == "multiclass",
            )
            batch, type_errors = columnarise(model, version, group, columns)
            if type_errors:
                self.metrics.feature_type_errors.labels(model=model).inc(type_errors)
            late = self.add_batch(batch, layout)
            decoded.rejected.extend(late_rejects(batch, late, group.indices, self.windows.size,
                                                 self.windows.watermark(batch.model, batch.version)))
        return decoded.rejected

    def _learn(self, model: str, version: str, group: Any) -> None:
        config = self.settings.model(model)
        positive = config.positive_class if config else "1"
        scores = [float("nan") if s is None else float(s.get(positive, float("nan"))) for s in group.scores]
        self.metrics.events.labels(model=model, version=version).inc(len(group.ids))
        baseline = self.baselines.learn(model, version, group.features, group.predictions, scores)
        if baseline is not None:
            log.info("baseline for %s %s ready; windows start with the next events", model, version)

    def _cap_segments(self, batch: PredictionBatch) -> None:
        allowed = self._segments.setdefault((batch.model, batch.version), set())
        cap = self.settings.limits.max_segments_per_model
        for i, segment in enumerate(batch.segments):
            if segment in allowed:
                continue
            if len(allowed) < cap:
                allowed.add(segment)
            else:
                batch.segments[i] = OTHER_SEGMENT
                self.metrics.capacity_dropped.labels(cap="segments").inc()

    def add_batch(self, batch: PredictionBatch, layout: Layout | None = None) -> np.ndarray:
        """Fold an already-columnar batch into its windows (the in-process entry point).

        Returns the mask of rows that came after their window closed (counted, not folded in)."""
        layout = layout or self.layout(batch.model, batch.version)
        if layout is None:
            raise ValueError(f"no baseline for {batch.model} {batch.version}")
        if len(batch.offsets) != len(batch):
            batch.offsets = self.next_positions(len(batch))
        self._cap_segments(batch)
        late, closed = self.windows.add(layout, batch)
        n_late = int(late.sum())
        if n_late:
            self.metrics.late_events.labels(model=batch.model).inc(n_late)
            self.late_tally.add(batch, late)
        self.metrics.events.labels(model=batch.model, version=batch.version).inc(len(batch) - n_late)
        on_time = batch if not n_late else batch.take(~late)
        starts = window_start(on_time.event_times, self.windows.size)
        if self.truth is not None:
            self.truth.add_predictions(on_time, starts)
        if self.explainer is not None:
            self.explainer.offer(on_time, starts, self._drifted(on_time))
        if self.truth is not None:
            # Labels that came before these predictions joined just now.
            self._explain_wrong()
            self._take_alarms()
        for key, start, aggregate in closed:
            self._finish(key, start, aggregate)
        return late

    def _drifted(self, batch: PredictionBatch) -> bool:
        """Whether the latest closed window of this model version drifted (explain more of it)."""
        for report in self.collector.reports():
            if report.key.model == batch.model and report.key.version == batch.version and report.model_drifted:
                return True
        return False

    def process_labels(self, values: Sequence[bytes | None]) -> list[Rejected]:
        """Join label messages to their predictions; returns the rejected ones."""
        batch, rejected = decode_labels(values, self.settings.limits.max_message_bytes, self.settings.limits.max_future_seconds)
        for item in rejected:
            self.metrics.invalid_events.labels(reason=item.reason).inc()
        if self.truth is None:
            return rejected
        rejected_index = {r.index for r in rejected}
        accepted_index = [i for i in range(len(values)) if i not in rejected_index]
        for row, reason, detail in self.truth.add_labels(batch):
            self.metrics.invalid_events.labels(reason=reason).inc()
            rejected.append(Rejected(accepted_index[row], reason, detail))
        self._explain_wrong()
        self._take_alarms()
        self.apply_label_updates()
        return rejected

    def add_labels(self, batch: LabelBatch) -> None:
        """In-process entry point for labels."""
        if self.truth is not None:
            self.truth.add_labels(batch)
            self._explain_wrong()
            self._take_alarms()
            self.apply_label_updates()

    def _explain_wrong(self) -> None:
        """Hand predictions the labels showed wrong to the explainer (taken either way,
        so that the ground truth's buffer of them stays empty)."""
        wrong = self.truth.take_wrong()
        if self.explainer is None:
            return
        for model, prediction_ids in wrong.items():
            self.explainer.offer_wrong(prediction_ids, model=model)

    def _take_alarms(self) -> None:
        """Export when each error stream last alarmed and hand new alarms to the sinks."""
        alarms = self.truth.take_alarms() if hasattr(self.truth, "take_alarms") else []
        for alarm in alarms:
            self.metrics.last_alarm.record(alarm.model, alarm.version, alarm.segment, alarm.detector, alarm.event_time)
        for sink in self.alarm_sinks if alarms else ():
            try:
                sink(alarms)
            except Exception:
                log.exception("alarm sink %r failed", sink)

    # -- windows -------------------------------------------------------------
    def close_due(self) -> list[WindowReport]:
        """Close and evaluate every window whose end the watermark has passed."""
        reports = [self._finish(key, start, aggregate) for key, start, aggregate in self.windows.due()]
        self.metrics.open_windows.set(len(self.windows.open))
        if self.truth is not None and hasattr(self.truth, "settle"):
            self.truth.settle()  # the watermark moved: errors behind it may settle now
            self._take_alarms()
        return reports

    def close_all(self) -> list[WindowReport]:
        reports = [self._finish(key, start, aggregate) for key, start, aggregate in self.windows.close_all()]
        self.metrics.open_windows.set(0)
        return reports

    def _finish(self, key: WindowKey, start: float, aggregate: WindowAggregate) -> WindowReport:
        began = time.perf_counter()
        layout = self.layout(key.model, key.version)
        assert layout is not None  # a window exists only for versions with a baseline
        size = self.windows.size
        report = evaluate_window(
            key, start, size, aggregate, layout, self.settings.drift, self.settings.model(key.model),
            self.settings.windows.min_events,
        )
        report.n_late = self.late_tally.take(key)
        baseline = layout.baseline
        report.baseline_performance = {k: v for k, v in baseline.performance.items() if isinstance(v, (int, float))}
        report.baseline_calibration = dict(baseline.calibration)
        if self.truth is not None:
            report.estimated_performance = self.truth.estimate(key, start)
            # Labels that joined while the window was open.
            update = self.truth.current(key, start)
            if update is not None:
                label_updates.copy_labels(report, update)
        self.metrics.window_compute.observe(time.perf_counter() - began)
        self.metrics.window_close_delay.observe(max(0.0, time.time() - report.window_end))
        self.metrics.windows_closed.labels(model=key.model).inc()
        self._publish(report)
        return report

    def _publish(self, report: WindowReport) -> None:
        slot = (report.key, report.window_start)
        self.recent[slot] = report
        self.recent.move_to_end(slot)
        while len(self.recent) > _RECENT_REPORTS:
            self.recent.popitem(last=False)
        if not self.collector.publish(report):
            self.metrics.capacity_dropped.labels(cap="series").inc()
        for sink in self.sinks:
            try:
                sink(report)
            except Exception:
                log.exception("report sink %r failed", sink)

    def apply_label_updates(self) -> None:
        """Copy label-based results into their windows' reports and publish them again."""
        label_updates.apply(self)

    def drain_dead_labels(self) -> list[tuple[bytes, str, str]]:
        """Labels whose prediction never arrived within the TTL: (value, reason, detail) to dead-letter."""
        return label_updates.dead_labels(self)

    def apply_attribution(self) -> None:
        """Copy attribution summaries of recent windows into their reports."""
        if self.explainer is None:
            return
        for (key, start), report in list(self.recent.items()):
            summary = self.explainer.attribution(key, start)
            if summary is not None and summary != report.attribution:
                report.attribution = summary
                self._publish(report)

    # -- checkpoints -----------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "windows": self.windows.to_state(),
            "segments": [[m, v, sorted(s)] for (m, v), s in self._segments.items()],
            "sequence": self._sequence,
            "learning": self.baselines.learning_state(),
        }
        if self.truth is not None:
            state["truth"] = base64.b64encode(self.truth.to_state()).decode("ascii")
        return state

    def _new_windows(self) -> tuple[PartitionClocks, Windows]:
        ws = self.settings.windows
        clocks = PartitionClocks(ws.allowed_lateness_seconds, ws.idle_timeout_seconds, ws.max_lead_seconds)
        return clocks, Windows(ws.size_seconds, ws.allowed_lateness_seconds,
                               self.settings.limits.max_open_windows_per_key, ws.count_trigger, clocks)

    def reset(self) -> None:
        """Empty window, clock and label state (a checkpoint that could not be read)."""
        self.clocks, self.windows = self._new_windows()
        self._segments = {}
        self._sequence = 0
        self.late_tally = LateTally()
        self.recent.clear()
        self.baselines.restore_learning({})
        if self.truth is not None and hasattr(self.truth, "_reset"):
            self.truth._reset()
        self.metrics.open_windows.set(0)

    def restore(self, state: dict[str, Any]) -> None:
        poisoned = self.windows.restore(state["windows"], time.time() + self.settings.limits.max_future_seconds)
        if poisoned:
            log.warning("checkpoint held %d event-time clocks ahead of the wall clock by more than "
                        "limits.max_future_seconds (events from a wrong clock): dropped", poisoned)
        self._segments = {(m, v): set(s) for m, v, s in state.get("segments", [])}
        self._sequence = int(state.get("sequence", 0))
        self.baselines.restore_learning(state.get("learning", {}))
        if self.truth is not None and "truth" in state:
            self.truth.from_state(base64.b64decode(state["truth"]))
        self.metrics.open_windows.set(len(self.windows.open))

