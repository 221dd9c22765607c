"""When each error stream last raised a sequential alarm, for Prometheus.

Two gauges per (model, version, segment, detector), from one bounded map:

* ``driftd_concept_drift_last_alarm_timestamp_seconds``: event time of the last
  alarm (the Prometheus convention for "when");
* ``driftd_concept_drift_last_alarm_age_seconds``: wall-clock seconds since that
  event time, computed at scrape, so that an alert rule can say "an alarm in the
  last 30 minutes" without ``time()`` arithmetic.

A key appears with its first alarm and stays (nothing to export before); past
``max_keys`` the least recently alarmed key goes first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["LastAlarmCollector"]

_LABELS = ["model", "version", "segment", "detector"]


class LastAlarmCollector(Collector):
    """Event time of the last alarm per error stream and detector (bounded)."""

    def __init__(self, max_keys: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._last: OrderedDict[tuple[str, str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, model: str, version: str, segment: str, detector: str, event_time: float) -> None:
        """Note an alarm; an older event time than the one held is ignored."""
        key = (model, version, segment, detector)
        with self._lock:
            if key in self._last and self._last[key] >= event_time:
                return
            self._last[key] = float(event_time)
            self._last.move_to_end(key)
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)

    def last(self, model: str, version: str, segment: str, detector: str) -> float | None:
        with self._lock:
            return self._last.get((model, version, segment, detector))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            items = list(self._last.items())
        now = self.clock()
        stamp = GaugeMetricFamily(
            "driftd_concept_drift_last_alarm_timestamp_seconds",
            "Event time of the last sequential-detector alarm on an error stream.", labels=_LABELS,
        )
        age = GaugeMetricFamily(
            "driftd_concept_drift_last_alarm_age_seconds",
            "Seconds from the event time of the last sequential-detector alarm to now.", labels=_LABELS,
        )
        for key, event_time in items:
            stamp.add_metric(list(key), event_time)
            age.add_metric(list(key), max(0.0, now - event_time))
        yield stamp
        yield age
