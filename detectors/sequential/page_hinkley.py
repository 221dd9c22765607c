"""Page–Hinkley test (Page, 1954): a CUSUM on deviations from the running mean.

With running mean ``m_t`` and fading factor ``alpha`` it keeps

    U_t = alpha U_{t-1} + (x_t - m_t) - delta      (increase)
    D_t = alpha D_{t-1} + (x_t - m_t) + delta      (decrease)

and alarms once ``U_t - min U > threshold`` (mode ``up``), ``max D - D_t >
threshold`` (``down``) or either (``both``), after ``min_instances`` values. The
update order and initial values (``min U = +inf``, ``max D = -1``) follow river
0.26.1, so alarms fall on the same indices.

>>> import random
>>> from detectors.sequential import PageHinkley
>>> rng = random.Random(12345)
>>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
>>> ph = PageHinkley()
>>> [i for i, x in enumerate(stream) if ph.update(x).drift_detected]
[1006]
>>> PageHinkley().update_many(stream).tolist()
[1006]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import lfilter

from detectors.sequential.base import SequentialDetector, decode_float, encode_float

_BLOCK = 8192
# Smallest vectorised block, and the alarm spacing below which a plain loop is faster.
_MIN_BLOCK = 64
_DENSE_GAP = 128

__all__ = ["PageHinkley"]

_MODES = ("up", "down", "both")


class PageHinkley(SequentialDetector):
    """Page–Hinkley change detector for a shift of the mean.

    Parameters
    ----------
    min_instances
        Values needed before an alarm can be raised.
    delta
        Magnitude of change tolerated (drift allowance).
    threshold
        Alarm threshold (lambda) on the cumulative deviation.
    alpha
        Fading factor of the cumulative sums.
    mode
        ``"up"`` (error grows), ``"down"`` or ``"both"``.
    """

    name = "page_hinkley"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"PageHinkley mode must be one of {', '.join(_MODES)}; got {mode!r}")
        if threshold <= 0 or not 0 < alpha <= 1 or min_instances < 1:
            raise ValueError("PageHinkley needs threshold > 0, 0 < alpha <= 1, min_instances >= 1")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._n = 0.0
        self._mean = 0.0
        self._sum_increase = 0.0
        self._sum_decrease = 0.0
        self._min_increase = float("inf")
        self._max_decrease = -1.0

    @property
    def statistic(self) -> float:
        """The Page–Hinkley test statistic of the watched direction(s) (alarm above ``threshold``)."""
        up, down = self._sum_increase - self._min_increase, self._max_decrease - self._sum_decrease
        return {"up": up, "down": down}.get(self.mode, max(up, down))

    def _alarm(self, test_increase: float, test_decrease: float) -> bool:
        if self.mode == "up":
            return test_increase > self.threshold
        if self.mode == "down":
            return test_decrease > self.threshold
        return test_increase > self.threshold or test_decrease > self.threshold

    def update(self, x: float) -> PageHinkley:
        if self._drift_detected:
            self._reset()
        self._n += 1.0
        self._mean += (1.0 / self._n) * (x - self._mean)
        deviation = x - self._mean
        self._sum_increase = self.alpha * self._sum_increase + deviation - self.delta
        self._sum_decrease = self.alpha * self._sum_decrease + deviation + self.delta
        self._min_increase = min(self._min_increase, self._sum_increase)
        self._max_decrease = max(self._max_decrease, self._sum_decrease)
        if self._n >= self.min_instances:
            self._drift_detected = self._alarm(
                self._sum_increase - self._min_increase, self._max_decrease - self._sum_decrease
            )
        return self

    def update_many(self, values: np.ndarray) -> np.ndarray:
        """Vectorised: running mean by cumulative sums, the fading sums by a linear filter.

        Rounding differs from :meth:`update` in the last bits (a cumulative sum
        instead of an incremental mean), which moves an alarm only when a statistic
        lands within ~1e-12 of the threshold.

        An alarm restarts the statistics, so the values after it are recomputed.
        Blocks are sized to the distance between recent alarms (bounded work per
        alarm), and where alarms come closer than ``_DENSE_GAP`` values numpy's
        per-call overhead exceeds a plain loop, so :meth:`update` runs value by value
        until a quiet stretch: never slower than calling :meth:`update` in a loop.
        """
        values = np.asarray(values, dtype=np.float64)
        alarms: list[int] = []
        statistics: list[float] = []
        # ``spacing``: a running average of the distance between alarms.
        start, spacing, last_alarm = 0, float(_BLOCK), -1
        while start < len(values):
            if spacing < _DENSE_GAP:
                start, spacing, last_alarm = self._dense(values, start, spacing, last_alarm, alarms, statistics)
                continue
            if self._drift_detected:
                self._reset()
            chunk = values[start:start + min(_BLOCK, max(_MIN_BLOCK, int(2 * spacing)))]
            stop = self._block(chunk)
            if self._drift_detected:
                alarms.append(start + stop)
                statistics.append(self.statistic)
                spacing = 0.8 * spacing + 0.2 * (start + stop - last_alarm)
                last_alarm = start + stop
            else:
                spacing = max(spacing, 2.0 * len(chunk))
            start += stop + 1
        self.alarm_statistics = np.asarray(statistics, dtype=np.float64)
        return np.asarray(alarms, dtype=np.int64)

    def _dense(
        self, values: np.ndarray, start: int, spacing: float, last_alarm: int, alarms: list[int], statistics: list[float]
    ) -> tuple[int, float, int]:
        """:meth:`update`'s arithmetic inlined over values from ``start`` while alarms stay dense."""
        alpha, delta, threshold, min_instances = self.alpha, self.delta, self.threshold, self.min_instances
        up_mode, down_mode = self.mode in ("up", "both"), self.mode in ("down", "both")
        n, mean = self._n, self._mean
        increase, decrease = self._sum_increase, self._sum_decrease
        min_increase, max_decrease = self._min_increase, self._max_decrease
        detected, quiet, i, done = self._drift_detected, 0, start, False
        while not done and i < len(values):
            # Short slices: converting only what is used (the loop may stop early).
            for x in values[i:i + _DENSE_GAP].tolist():
                if detected:
                    n, mean, increase, decrease, min_increase, max_decrease = 0.0, 0.0, 0.0, 0.0, float("inf"), -1.0
                    detected = False
                n += 1.0
                mean += (1.0 / n) * (x - mean)
                deviation = x - mean
                increase = alpha * increase + deviation - delta
                decrease = alpha * decrease + deviation + delta
                if increase < min_increase:  # noqa: PLR1730 (min() as in update(), without the call)
                    min_increase = increase
                if decrease > max_decrease:  # noqa: PLR1730
                    max_decrease = decrease
                if n >= min_instances:
                    detected = (up_mode and increase - min_increase > threshold) or (
                        down_mode and max_decrease - decrease > threshold
                    )
                i += 1
                if detected:
                    up, down = increase - min_increase, max_decrease - decrease
                    alarms.append(i - 1)
                    statistics.append({"up": up, "down": down}.get(self.mode, max(up, down)))
                    spacing = 0.8 * spacing + 0.2 * (i - 1 - last_alarm)
                    last_alarm, quiet = i - 1, 0
                    done = spacing >= _DENSE_GAP
                else:
                    quiet += 1
                    if quiet >= 2 * _DENSE_GAP:
                        spacing, done = max(spacing, float(quiet)), True
                if done:
                    break
        self._n, self._mean = n, mean
        self._sum_increase, self._sum_decrease = increase, decrease
        self._min_increase, self._max_decrease = min_increase, max_decrease
        self._drift_detected = bool(detected)
        return i, spacing, last_alarm

    def _block(self, chunk: np.ndarray) -> int:
        """Fold ``chunk`` up to its first alarm; the index of that alarm (or of the last value)."""
        n = self._n + np.arange(1, len(chunk) + 1, dtype=np.float64)
        mean = (self._mean * self._n + np.cumsum(chunk)) / n
        deviation = chunk - mean
        a = [1.0, -self.alpha]
        increase = lfilter([1.0], a, deviation - self.delta, zi=[self.alpha * self._sum_increase])[0]
        decrease = lfilter([1.0], a, deviation + self.delta, zi=[self.alpha * self._sum_decrease])[0]
        min_increase = np.minimum.accumulate(np.minimum(increase, self._min_increase))
        max_decrease = np.maximum.accumulate(np.maximum(decrease, self._max_decrease))
        test_up = increase - min_increase > self.threshold
        test_down = max_decrease - decrease > self.threshold
        fired = {"up": test_up, "down": test_down, "both": test_up | test_down}[self.mode]
        fired &= n >= self.min_instances
        hits = np.flatnonzero(fired)
        stop = int(hits[0]) if len(hits) else len(chunk) - 1
        self._n, self._mean = float(n[stop]), float(mean[stop])
        self._sum_increase, self._sum_decrease = float(increase[stop]), float(decrease[stop])
        self._min_increase, self._max_decrease = float(min_increase[stop]), float(max_decrease[stop])
        if len(hits):
            self._drift_detected = True
        elif self._n >= self.min_instances:
            self._drift_detected = False
        return stop

    def _get_state(self) -> dict[str, Any]:
        return {
            "n": self._n,
            "mean": self._mean,
            "sum_increase": self._sum_increase,
            "sum_decrease": self._sum_decrease,
            "min_increase": encode_float(self._min_increase),
            "max_decrease": encode_float(self._max_decrease),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = float(state["n"])
        self._mean = float(state["mean"])
        self._sum_increase = float(state["sum_increase"])
        self._sum_decrease = float(state["sum_decrease"])
        self._min_increase = decode_float(state["min_increase"])
        self._max_decrease = decode_float(state["max_decrease"])
