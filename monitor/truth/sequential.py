"""Error streams in event-time order for the sequential detectors (ADWIN, DDM, Page-Hinkley).

Labels join in the order polls happen to deliver them, which depends on batch sizes,
partition interleaving and restarts. Fed in that order, the same events gave different
alarms from run to run. Here a joined error waits until its prediction's event time
is ``settle_seconds`` behind the labels' clock (the latest label event time seen);
settled errors are fed per (model, version, segment) sorted by (prediction time,
prediction id), so the same events always give the same alarms, at the same event
times (an alarm carries the prediction time of the error that raised it).

An error that joins after its stream has already been fed past its prediction time
(a label later than ``settle_seconds``) cannot be fed in order: it is left out of the
sequential detectors (still counted in its window's performance) and counted in
``driftd_sequential_excluded_total``. Waiting errors are bounded by ``max_waiting``;
beyond it the oldest settle early.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from detectors.sequential import SequentialDetector, load_detector
from monitor.metrics import PipelineMetrics
from monitor.results import WindowKey
from monitor.truth.alarms import ConceptAlarm

__all__ = ["SequentialStreams"]

_MAX_DETECTOR_SETS = 1024  # (model, version, segment) keys with sequential detectors


class SequentialStreams:
    """Per-key detectors fed with settled errors in event-time order.

    Parameters
    ----------
    factory
        ``task -> fresh detectors`` for a new key.
    settle_seconds
        Event-time seconds an error waits behind the clock before it is fed.
    metrics
        Where alarms and excluded errors are counted (optional).
    max_waiting
        Bound on errors waiting to settle, over all keys.
    """

    def __init__(self, factory: Callable[[str], list[SequentialDetector]], settle_seconds: float,
                 metrics: PipelineMetrics | None = None, max_waiting: int = 1_000_000) -> None:
        self.factory = factory
        self.settle_seconds = float(settle_seconds)
        self.metrics = metrics
        self.max_waiting = max_waiting
        self.detectors: OrderedDict[WindowKey, tuple[int, list[SequentialDetector]]] = OrderedDict()
        self.waiting: dict[WindowKey, tuple[str, list[tuple[float, str, float]]]] = {}
        self.fed_until: dict[WindowKey, float] = {}
        self.n_waiting = 0
        self.alarms: deque[ConceptAlarm] = deque(maxlen=1000)
        self.untaken: deque[ConceptAlarm] = deque(maxlen=10_000)

    def add(self, key: WindowKey, task: str, times: np.ndarray, ids: list[str], errors: np.ndarray) -> None:
        """Joined errors of ``key`` with their predictions' event times and ids."""
        floor = self.fed_until.get(key, -math.inf)
        late = times < floor
        if late.any() and self.metrics is not None:
            self.metrics.sequential_excluded.labels(model=key.model).inc(int(late.sum()))
        entries = [(float(t), pid, float(e)) for t, pid, e, x in zip(times.tolist(), ids, errors.tolist(), late.tolist()) if not x]
        if entries:
            self.waiting.setdefault(key, (task, []))[1].extend(entries)
            self.n_waiting += len(entries)

    def settle(self, now: float, progress: Callable[[WindowKey], float] | None = None) -> None:
        """Feed every error whose prediction time is ``settle_seconds`` behind ``now`` (the
        labels' clock) and behind ``progress(key)`` (how far the key's predictions have
        been read, their watermark plus lateness): a label that came before its
        prediction joins only when the prediction is read, so the predictions' progress
        holds the cutoff back too."""
        def cutoff(key: WindowKey) -> float:
            limit = now if progress is None else min(now, progress(key))
            return limit - self.settle_seconds

        while self.n_waiting > self.max_waiting:  # bounded: the oldest settle early
            oldest = min(min(e)[0] for _, e in self.waiting.values() if e)
            self._feed_until(lambda key, o=oldest: max(cutoff(key), o))
        self._feed_until(cutoff)

    def flush(self) -> None:
        """Feed everything waiting (the end of a stream, or tests)."""
        self._feed_until(lambda _key: math.inf)

    def _feed_until(self, cutoff: Callable[[WindowKey], float]) -> None:
        for key in list(self.waiting):
            task, entries = self.waiting[key]
            entries.sort()
            limit = cutoff(key)
            n = next((i for i, entry in enumerate(entries) if entry[0] > limit), len(entries))
            if n == 0:
                continue
            ready, rest = entries[:n], entries[n:]
            self.n_waiting -= n
            if rest:
                self.waiting[key] = (task, rest)
            else:
                del self.waiting[key]
            self.fed_until[key] = max(self.fed_until.get(key, -math.inf), ready[-1][0])
            self._feed(key, task, np.array([e[2] for e in ready]), np.array([e[0] for e in ready]))

    def _feed(self, key: WindowKey, task: str, errors: np.ndarray, times: np.ndarray) -> None:
        entry = self.detectors.get(key)
        if entry is None:
            entry = (0, self.factory(task))
            if len(self.detectors) >= _MAX_DETECTOR_SETS:
                evicted, _ = self.detectors.popitem(last=False)
                self.fed_until.pop(evicted, None)
        self.detectors[key] = entry
        self.detectors.move_to_end(key)
        seen, detectors = entry
        for detector in detectors:
            indices = detector.update_many(errors).tolist()
            for index, statistic in zip(indices, detector.alarm_statistics.tolist()):
                alarm = ConceptAlarm(*key, detector.name, float(times[index]), seen + index + 1, statistic)
                self.alarms.append(alarm)
                self.untaken.append(alarm)
                if self.metrics is not None:
                    self.metrics.concept_drift_alarms.labels(model=key.model, version=key.version, detector=detector.name).inc()
        self.detectors[key] = (seen + len(errors), detectors)

    def take_alarms(self) -> list[ConceptAlarm]:
        taken = list(self.untaken)
        self.untaken.clear()
        return taken

    # -- checkpoints ------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "detectors": [[*key, seen, [d.to_state() for d in dets]] for key, (seen, dets) in self.detectors.items()],
            "waiting": [[*key, task, [list(e) for e in entries]] for key, (task, entries) in self.waiting.items()],
            "fed_until": [[*key, t] for key, t in self.fed_until.items()],
            "alarms": [_alarm_row(a) for a in self.alarms],
            "untaken": [_alarm_row(a) for a in self.untaken],
        }

    def restore(self, detectors: list[Any], waiting: list[Any], fed_until: list[Any],
                alarms: list[Any] = (), untaken: list[Any] = ()) -> None:  # type: ignore[assignment]
        """Load :meth:`to_state` parts (``detectors`` entries 4 long are per version, from 0.1)."""
        self.__init__(self.factory, self.settle_seconds, self.metrics, self.max_waiting)  # type: ignore[misc]
        for entry in detectors:
            model, version, segment, seen, states = entry if len(entry) == 5 else [*entry[:2], "", *entry[2:]]
            self.detectors[WindowKey(model, version, segment)] = (int(seen), [load_detector(d) for d in states])
        for model, version, segment, task, entries in waiting:
            self.waiting[WindowKey(model, version, segment)] = (task, [(float(t), str(p), float(e)) for t, p, e in entries])
            self.n_waiting += len(entries)
        for model, version, segment, t in fed_until:
            self.fed_until[WindowKey(model, version, segment)] = float(t)
        self.alarms.extend(_alarm(row) for row in alarms)
        self.untaken.extend(_alarm(row) for row in untaken)


def _alarm_row(alarm: ConceptAlarm) -> list[Any]:
    statistic = None if math.isnan(alarm.statistic) else alarm.statistic
    return [alarm.model, alarm.version, alarm.segment, alarm.detector, alarm.event_time, alarm.errors_seen, statistic]


def _alarm(row: list[Any]) -> ConceptAlarm:
    model, version, segment, detector, event_time, errors_seen, statistic = row
    return ConceptAlarm(model, version, segment, detector, float(event_time), int(errors_seen),
                        math.nan if statistic is None else float(statistic))
