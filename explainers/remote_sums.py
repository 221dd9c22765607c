"""Attribution drift in ``explain.mode: kafka``: |SHAP| sums read back from the store.

explain-workers add each task's |SHAP| sums per window to ``attribution_sums`` in the
transaction that writes the task's explanations (:mod:`monitor.store.tasks`), once
per task however often Kafka redelivers it. :class:`StoreSums` is a thread of the
daemon that reads the sums of the windows the daemon asked about
(:meth:`want`: the pipeline asks for every window it still reports on) every
``interval`` seconds, and puts them into the same
:class:`~explainers.window_attribution.WindowAttributions` the pool mode fills from
its collector. The read is one query, O(windows × features), whatever the traffic.

Because the sums live in the store, a restarted daemon (or another daemon) sees the
attribution of windows explained before it started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from explainers.window_attribution import WindowAttributions
from monitor.metrics import PipelineMetrics
from monitor.results import WindowKey

__all__ = ["StoreSums"]

log = logging.getLogger(__name__)

WindowId = tuple[str, str, str, float]


class StoreSums:
    """Reads |SHAP| sums of wanted windows from the store into ``attributions``.

    Parameters
    ----------
    store
        A :class:`~monitor.store.Store`.
    attributions
        Where the sums go (replaced, not added).
    metrics
        ``driftd_store_errors_total{operation="window_sums"}``.
    interval
        Seconds between reads.
    max_windows, forget_after
        Windows kept wanted at most, and seconds after which a window nobody asked
        about again is no longer read.
    """

    def __init__(
        self, store: Any, attributions: WindowAttributions, metrics: PipelineMetrics, interval: float = 2.0,
        max_windows: int = 512, forget_after: float = 900.0,
    ) -> None:
        self.store = store
        self.attributions = attributions
        self.metrics = metrics
        self.interval = interval
        self.max_windows = max_windows
        self.forget_after = forget_after
        self._wanted: OrderedDict[WindowId, float] = OrderedDict()  # window -> last asked (monotonic)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftd-explain-sums", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def want(self, key: WindowKey, window_start: float) -> None:
        """Read this window's sums from now on (cheap: the ingest thread calls it)."""
        window = (key.model, key.version, key.segment, float(window_start))
        with self._lock:
            self._wanted[window] = time.monotonic()
            self._wanted.move_to_end(window)
            while len(self._wanted) > self.max_windows:
                self._wanted.popitem(last=False)

    def refresh(self) -> bool:
        """Read the wanted windows' sums now; False when the store failed."""
        from monitor.store.tasks import window_sums

        now = time.monotonic()
        with self._lock:
            for window in [w for w, asked in self._wanted.items() if now - asked > self.forget_after]:
                del self._wanted[window]
            windows = list(self._wanted)
        if not windows:
            return True
        try:
            found = window_sums(self.store, windows)
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop the daemon
            self.metrics.store_errors.labels(operation="window_sums").inc()
            log.warning("cannot read attribution sums of %d windows: %s", len(windows), exc)
            return False
        for window, (names, totals, count) in found.items():
            self.attributions.set_sums(window, names, totals, count)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 30)
