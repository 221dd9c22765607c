"""A false-alarm budget per model, split into per-window and per-test levels.

Alerts are judged over days, so driftd's error control starts from an expected
number of false drift alarms per model per day (``drift.false_alarms_per_day``)
and works down:

1. **Per window.** A model has ``windows_per_day`` windows in each of ``segments``
   segments. A false alarm is a window (or ``alert_windows`` consecutive windows,
   the alert rule's ``for``) in which some test flags by chance. With a per-window
   family-wise level ``a``, independent windows give ``windows_per_day · segments · a^k``
   expected false alarms a day for ``k = alert_windows``, so
   ``a = (budget / (windows_per_day · segments)) ^ (1 / k)``.
2. **Per test.** The window's ``m`` tests (features, novelty tests, prediction and
   score, multivariate) share ``a`` by the union bound: each effect-size noise floor
   and each uncorrected test uses ``a / m``; Benjamini–Hochberg on the ``m_p`` p-values
   runs at ``a · m_p / m`` (under no drift BH's family-wise error equals its level),
   so the window's total stays at most ``a``.

>>> budget = Budget(false_alarms_per_day=0.1, windows_per_day=288, segments=2)
>>> f"{budget.window_level:.3g}", f"{budget.test_level(10):.3g}"
('0.000174', '1.74e-05')
>>> round(budget.expected_per_day(budget.window_level), 6)
0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Budget"]


@dataclass(frozen=True, slots=True)
class Budget:
    """The budget and the figures it implies (all pure arithmetic, no state)."""

    false_alarms_per_day: float
    windows_per_day: float
    segments: int = 1
    alert_windows: int = 1

    def __post_init__(self) -> None:
        if not self.false_alarms_per_day > 0:
            raise ValueError(f"false_alarms_per_day must be > 0; got {self.false_alarms_per_day}")
        if not self.windows_per_day > 0 or self.segments < 1 or self.alert_windows < 1:
            raise ValueError("windows_per_day must be > 0, segments and alert_windows >= 1")

    @property
    def window_level(self) -> float:
        """Family-wise false-flag probability of one (model, segment) window."""
        per_window = self.false_alarms_per_day / (self.windows_per_day * self.segments)
        return float(min(per_window, 1.0) ** (1.0 / self.alert_windows))

    def test_level(self, tests: int) -> float:
        """Level of each of ``tests`` tests of one window (union bound)."""
        return self.window_level / max(int(tests), 1)

    def bh_level(self, p_tests: int, tests: int) -> float:
        """Benjamini–Hochberg level of ``p_tests`` p-values among ``tests`` tests of a window."""
        return self.window_level * max(int(p_tests), 0) / max(int(tests), 1)

    def expected_per_day(self, window_rate: float) -> float:
        """False alarms a day implied by a per-window false-flag rate (for reports and tests)."""
        return self.windows_per_day * self.segments * window_rate**self.alert_windows

    @property
    def days_between_false_alarms(self) -> float:
        """Expected run time between false alarms of one model, in days."""
        return 1.0 / self.false_alarms_per_day

    @property
    def windows_between_false_alarms(self) -> float:
        """The same in windows of one segment (the ARL of the per-window rule)."""
        return self.windows_per_day / self.false_alarms_per_day

    def describe(self, tests: int) -> list[tuple[str, str]]:
        """Rows for ``driftd baseline show``: the budget and what it implies."""
        return [
            ("false alarms per day (budget)", f"{self.false_alarms_per_day:g}"),
            ("days between false alarms", f"{self.days_between_false_alarms:.3g}"),
            ("windows per day x segments", f"{self.windows_per_day:g} x {self.segments}"),
            ("consecutive windows to alert", f"{self.alert_windows}"),
            ("per-window level", f"{self.window_level:.3g}"),
            (f"per-test level ({tests} tests)", f"{self.test_level(tests):.3g}"),
            ("z of the per-test level", f"{_z(self.test_level(tests)):.2f}"),
        ]


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1.0 - level) if 0 < level < 1 else math.inf
