"""DDM: the drift detection method of Gama et al. (2004) on a 0/1 error stream.

With error rate ``p_i`` (running mean of the errors) and ``s_i = sqrt(p_i (1 -
p_i) / i)``, DDM remembers ``p_min, s_min`` where ``p_i + s_i`` was lowest and,
after ``warm_start`` values, warns when ``p_i + s_i > p_min + warning_threshold *
s_min`` and alarms when ``p_i + s_i > p_min + drift_threshold * s_min``. Ties for
the minimum keep the latest index, as river 0.26.1 does.

>>> import random
>>> from detectors.sequential import DDM
>>> rng = random.Random(42)
>>> stream = rng.choices([0, 1], k=1000) + rng.choices([0, 1], k=1000, weights=[0.3, 0.7])
>>> ddm = DDM()
>>> [i for i, x in enumerate(stream) if ddm.update(x).drift_detected]
[1334]
>>> DDM().update_many(stream).tolist()
[1334]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detectors.sequential.base import SequentialDetector, decode_float, encode_float

_BLOCK = 8192

__all__ = ["DDM"]


class DDM(SequentialDetector):
    """Drift detection method with a warning zone.

    Parameters
    ----------
    warm_start
        Values needed before a warning or alarm can be raised.
    warning_threshold
        Multiple of ``s_min`` for the warning zone (2 ≈ 95 % confidence).
    drift_threshold
        Multiple of ``s_min`` for an alarm (3 ≈ 99 % confidence).
    """

    name = "ddm"
    binary_input = True

    def __init__(self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0) -> None:
        super().__init__()
        if warm_start < 0 or warning_threshold <= 0 or drift_threshold < warning_threshold:
            raise ValueError("DDM needs warm_start >= 0 and 0 < warning_threshold <= drift_threshold")
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._warning_detected = False
        self._n = 0.0
        self._p = 0.0
        self._p_min: float | None = None
        self._s_min: float | None = None
        self._ps_min = float("inf")

    @property
    def statistic(self) -> float:
        """``(p + s - p_min) / s_min``: how many ``s_min`` the error rate rose (alarm above
        ``drift_threshold``); NaN before the warm start."""
        if self._s_min is None or self._n <= 0 or not self._s_min > 0:
            return math.nan
        return (self._p + math.sqrt(self._p * (1 - self._p) / self._n) - self._p_min) / self._s_min

    @property
    def warning_detected(self) -> bool:
        """Whether the last update put the detector in its warning zone."""
        return self._warning_detected

    def update(self, x: float) -> DDM:
        if self._drift_detected:
            self._reset()
        self._n += 1.0
        self._p += (1.0 / self._n) * (x - self._p)
        p, n = self._p, self._n
        s = math.sqrt(p * (1 - p) / n)
        if n > self.warm_start:
            if p + s <= self._ps_min:
                self._p_min, self._s_min = p, s
                self._ps_min = p + s
            self._warning_detected = p + s > self._p_min + self.warning_threshold * self._s_min
            if p + s > self._p_min + self.drift_threshold * self._s_min:
                self._drift_detected = True
                self._warning_detected = False
        return self

    def update_many(self, values: np.ndarray) -> np.ndarray:
        """Vectorised over the batch with cumulative sums and a running minimum.

        The error rate is a cumulative sum divided by the count (exact for 0/1
        input) rather than river's incremental mean; see the module tests for the
        parity check.
        """
        values = np.asarray(values, dtype=np.float64)
        alarms: list[int] = []
        statistics: list[float] = []
        start = 0
        while start < len(values):
            if self._drift_detected:
                self._reset()
            # Bounded blocks: after an alarm only the rest of one block is recomputed.
            chunk = values[start:start + _BLOCK]
            n = self._n + np.arange(1, len(chunk) + 1, dtype=np.float64)
            p = (self._p * self._n + np.cumsum(chunk)) / n
            s = np.sqrt(p * (1 - p) / n)
            ps = p + s
            active = n > self.warm_start
            # Running minimum of p + s; ties move the minimum to the latest index.
            candidate = np.where(active, ps, np.inf)
            running = np.minimum.accumulate(np.minimum(candidate, self._ps_min))
            is_new = active & (candidate <= np.concatenate(([self._ps_min], running[:-1])))
            last_new = np.maximum.accumulate(np.where(is_new, np.arange(len(chunk)), -1))
            has_min = (last_new >= 0) | (self._p_min is not None)
            idx = np.maximum(last_new, 0)
            p_min = np.where(last_new >= 0, p[idx], self._p_min if self._p_min is not None else np.nan)
            s_min = np.where(last_new >= 0, s[idx], self._s_min if self._s_min is not None else np.nan)
            with np.errstate(invalid="ignore"):
                drift = active & has_min & (ps > p_min + self.drift_threshold * s_min)
                warning = active & has_min & (ps > p_min + self.warning_threshold * s_min)
            hits = np.flatnonzero(drift)
            stop = int(hits[0]) if len(hits) else len(chunk) - 1
            self._n, self._p = float(n[stop]), float(p[stop])
            if last_new[stop] >= 0:
                self._p_min, self._s_min = float(p_min[stop]), float(s_min[stop])
                self._ps_min = float(running[stop])
            if len(hits):
                alarms.append(start + stop)
                statistics.append(self.statistic)
                self._drift_detected, self._warning_detected = True, False
            elif active[stop]:
                self._warning_detected = bool(warning[stop])
            start += stop + 1
        self.alarm_statistics = np.asarray(statistics, dtype=np.float64)
        return np.asarray(alarms, dtype=np.int64)

    def _get_state(self) -> dict[str, Any]:
        return {
            "n": self._n,
            "p": self._p,
            "p_min": self._p_min,
            "s_min": self._s_min,
            "ps_min": encode_float(self._ps_min),
            "warning_detected": self._warning_detected,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = float(state["n"])
        self._p = float(state["p"])
        self._p_min = decode_float(state["p_min"])
        self._s_min = decode_float(state["s_min"])
        self._ps_min = decode_float(state["ps_min"])
        self._warning_detected = bool(state["warning_detected"])
