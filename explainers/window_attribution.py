"""Running sums of |SHAP| per window, for attribution drift.

Each explained row adds its |SHAP| vector to the running sum of its (model,
version, segment, window start); the mean over a window is sum / count. The sums
are mergeable and the number of windows kept is capped (oldest first out), so
memory is bounded by ``max_windows × features``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from monitor.results import WindowKey

__all__ = ["WindowAttributions"]

WindowId = tuple[str, str, str, float]


class WindowAttributions:
    """Sum of |SHAP| and explanation count per window (thread-safe).

    >>> sums = WindowAttributions(max_windows=2)
    >>> sums.add_sums("m", "v1", "", 0.0, ["a", "b"], np.array([4.0, 2.0]), 2)
    >>> sums.mean(WindowKey("m", "v1", ""), 0.0)
    ({'a': 2.0, 'b': 1.0}, 2)
    """

    def __init__(self, max_windows: int = 4096) -> None:
        self.max_windows = max_windows
        self._sums: OrderedDict[WindowId, tuple[list[str], np.ndarray, int]] = OrderedDict()
        self._changed: set[WindowId] = set()
        self._lock = threading.Lock()

    def add_sums(
        self,
        model: str,
        version: str,
        segment: str,
        window_start: float,
        names: Sequence[str],
        abs_shap: np.ndarray,
        count: int,
    ) -> None:
        """Add ``count`` explanations of one window whose |SHAP| per feature sums to ``abs_shap``."""
        window = (model, version, segment, float(window_start))
        names = list(names)
        with self._lock:
            current = self._sums.get(window)
            if current is not None and current[0] == names:
                abs_shap = abs_shap + current[1]
                count = current[2] + count
            self._sums[window] = (names, np.asarray(abs_shap, dtype=np.float64), int(count))
            self._sums.move_to_end(window)
            self._changed.add(window)
            while len(self._sums) > self.max_windows:
                evicted, _ = self._sums.popitem(last=False)
                self._changed.discard(evicted)

    def set_sums(
        self, window: WindowId, names: Sequence[str], abs_shap: np.ndarray, count: int,
    ) -> None:
        """Replace a window's sums with totals read elsewhere (the store); marks it
        changed only when its count changed.

        >>> sums = WindowAttributions()
        >>> sums.set_sums(("m", "v1", "", 0.0), ["a"], np.array([3.0]), 3)
        >>> sums.set_sums(("m", "v1", "", 0.0), ["a"], np.array([3.0]), 3)
        >>> [(key.model, start) for key, start in sums.take_changed()], sums.mean(WindowKey("m", "v1", ""), 0.0)
        ([('m', 0.0)], ({'a': 1.0}, 3))
        """
        window = (window[0], window[1], window[2], float(window[3]))
        with self._lock:
            current = self._sums.get(window)
            if current is None or current[2] != count:
                self._changed.add(window)
            self._sums[window] = (list(names), np.asarray(abs_shap, dtype=np.float64), int(count))
            self._sums.move_to_end(window)
            while len(self._sums) > self.max_windows:
                evicted, _ = self._sums.popitem(last=False)
                self._changed.discard(evicted)

    def mean(self, key: WindowKey, window_start: float) -> tuple[dict[str, float], int] | None:
        """Mean |SHAP| per feature of one window and the number of explanations."""
        with self._lock:
            entry = self._sums.get((key.model, key.version, key.segment, float(window_start)))
        if entry is None:
            return None
        names, total, count = entry
        return {name: float(v) for name, v in zip(names, total / count)}, count

    def take_changed(self) -> list[tuple[WindowKey, float]]:
        """Windows that gained explanations since the last call, oldest first."""
        with self._lock:
            changed = [w for w in self._sums if w in self._changed]
            self._changed.clear()
        return [(WindowKey(m, v, s), start) for m, v, s, start in changed]
