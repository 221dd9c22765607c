"""When to ask for a retrain: a pure fold over the window reports of each key.

The trigger keeps, per (model, version, segment), the newest window start it has seen
and the tested windows in a row whose model-level decision was "drifted" (at most
``consecutive_windows`` of them: state is bounded by the number of keys). A report of
a window already seen (labels or explanations arriving later) never extends the run,
but is checked for a performance drop.

>>> from monitor.results import WindowKey, WindowReport
>>> from detectors.base import DriftResult
>>> trigger = RetrainTrigger(consecutive_windows=2)
>>> flagged = [DriftResult("psi", "x", 0.4, None, 0.2, True)]
>>> key = WindowKey("credit", "v1", "")
>>> trigger.update(WindowReport(key, 0, 300, 500, features=flagged, model_drifted=True)) is None
True
>>> trigger.update(WindowReport(key, 300, 600, 500, features=flagged, model_drifted=True)).reason
'drift_persisted'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from monitor.findings import worst_metric
from monitor.results import WindowKey, WindowReport

__all__ = ["REASONS", "RetrainDecision", "RetrainTrigger"]

REASONS = ("drift_persisted", "drift_decision", "performance_dropped")


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    """A key asks for a retrain: why, and the windows that made it ask (oldest first)."""

    key: WindowKey
    reason: str
    windows: tuple[WindowReport, ...]
    metric: str | None = None


class RetrainTrigger:
    """Fold window reports into retrain decisions.

    Parameters
    ----------
    consecutive_windows
        Drifted tested windows of a key in a row that make a ``drift_persisted`` decision.
    drift_trigger
        ``consecutive`` (the rule above), ``decision`` (one drifted window suffices:
        ``drift_decision``) or ``off``.
    performance_trigger
        A labelled window whose metric dropped beyond ``performance_tolerance`` (the
        ``DriftdPerformanceDrop`` rule, :func:`monitor.findings.worst_metric`) decides
        ``performance_dropped``.
    performance_tolerance, min_labels
        The rule's tolerance, and the labels a window needs before it is judged.
    max_keys
        Keys kept at most (the oldest seen is forgotten first).
    """

    def __init__(
        self,
        consecutive_windows: int = 3,
        drift_trigger: Literal["consecutive", "decision", "off"] = "consecutive",
        performance_trigger: bool = True,
        performance_tolerance: float = 0.05,
        min_labels: int = 30,
        max_keys: int = 10_000,
    ) -> None:
        self.consecutive_windows = consecutive_windows
        self.drift_trigger = drift_trigger
        self.performance_trigger = performance_trigger
        self.performance_tolerance = performance_tolerance
        self.min_labels = min_labels
        self.max_keys = max_keys
        self._reset()

    def _reset(self) -> None:
        self._newest: dict[WindowKey, float] = {}
        self._runs: dict[WindowKey, list[WindowReport]] = {}

    def update(self, report: WindowReport) -> RetrainDecision | None:
        """Fold one report in; returns a decision when this report completes one."""
        key = report.key
        newest = self._newest.get(key, -math.inf)
        decision = None
        if report.window_start > newest:
            self._remember(key, report.window_start)
            decision = self._drift(report)
        if decision is None:
            decision = self._performance(report)
        return decision

    def _remember(self, key: WindowKey, start: float) -> None:
        self._newest.pop(key, None)
        self._newest[key] = start
        while len(self._newest) > self.max_keys:
            oldest = next(iter(self._newest))
            del self._newest[oldest]
            self._runs.pop(oldest, None)

    def _drift(self, report: WindowReport) -> RetrainDecision | None:
        if self.drift_trigger == "off" or not (report.features or report.multivariate):
            return None  # untested windows (below windows.min_events) neither extend nor break a run
        if not report.model_drifted:
            self._runs.pop(report.key, None)
            return None
        if self.drift_trigger == "decision":
            return RetrainDecision(report.key, "drift_decision", (report,))
        run = self._runs.setdefault(report.key, [])
        run.append(report)
        del run[: max(0, len(run) - self.consecutive_windows)]
        if len(run) < self.consecutive_windows:
            return None
        # A fresh run is needed for the next decision (the cooldown holds it anyway).
        self._runs.pop(report.key, None)
        return RetrainDecision(report.key, "drift_persisted", tuple(run))

    def _performance(self, report: WindowReport) -> RetrainDecision | None:
        if not self.performance_trigger or report.n_labels < self.min_labels or not report.performance:
            return None
        performance = {m: list(v) for m, v in report.performance.items()}
        metric = worst_metric(performance, report.baseline_performance, self.performance_tolerance)
        if metric is None:
            return None
        return RetrainDecision(report.key, "performance_dropped", (report,), metric=metric)
