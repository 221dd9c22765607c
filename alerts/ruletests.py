"""``promtool test rules`` unit tests generated from the alert catalogue.

For every case of every alert three tests are written:

* **firing**: the inputs that should page; the alert is still pending before its
  ``for`` elapsed, then fires with exactly the expected labels and annotations
  (the annotations are rendered by :class:`~alerts.templating.Expected`, so the Go
  templates are checked against the intended text);
* **quiet**: the same series with healthy values; the alert never fires;
* **keep firing** (alerts with ``keep_firing_for``): the condition clears and the
  alert keeps firing for ``keep_firing_for``, then resolves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from alerts.catalogue import AlertSpec, Case, RuleOptions, Series, parse_duration
from alerts.rules import alert_annotations
from alerts.templating import WINDOW_END_METRIC, Expected
from monitor.config import Settings

__all__ = ["TestPlan", "rule_tests"]


class TestPlan:
    """The step and evaluation times shared by every generated test."""

    __test__ = False  # not a pytest class

    def __init__(self, settings: Settings, options: RuleOptions) -> None:
        self.for_s = parse_duration(options.for_duration)
        self.keep_s = parse_duration(options.keep_firing_for)
        rate_s = parse_duration(options.rate_window)
        # rate() needs two samples in its window; a step of a quarter window gives five.
        candidates = [60.0, max(1.0, rate_s / 4)]
        candidates += [d for d in (self.for_s, self.keep_s) if d > 0]
        self.interval = max(1, int(min(candidates)))
        stale_s = settings.stale_window_seconds
        # Past the rate window (exact rates), the staleness threshold, and ``for``.
        self.fire_at = self._step(self.for_s + max(rate_s, stale_s) + 2 * self.interval)
        self.pending_at = (
            self._step(self.for_s - self.interval) if self.for_s >= 2 * self.interval else None
        )
        # Keep-firing test: the condition holds for ``hold`` steps, then clears.
        self.hold = math.ceil(self.for_s / self.interval) + 2
        self.clear_at = self.hold * self.interval
        self.kept_at = self._step(self.clear_at + self.keep_s / 2)
        self.resolved_at = self._step(self.clear_at + self.keep_s + 2 * self.interval)
        self.steps = int(max(self.fire_at, self.resolved_at) // self.interval) + 5

    def _step(self, seconds: float) -> int:
        return int(math.ceil(seconds / self.interval) * self.interval)

    def values(self, series: Series, firing: bool) -> str | None:
        """promtool expanding notation for the whole test (None: series absent)."""
        value = series.firing if firing else series.quiet
        if value is None:
            return None
        if series.counter:
            return f"0+{_num(value * self.interval)}x{self.steps}"
        return f"{_num(value)}x{self.steps}"

    def switching_values(self, series: Series) -> str:
        """Firing values for ``hold`` steps, then quiet values."""
        assert series.firing is not None and series.quiet is not None
        rest = self.steps - self.hold
        if series.counter:
            inc_f, inc_q = series.firing * self.interval, series.quiet * self.interval
            last = inc_f * (self.hold - 1)
            return f"0+{_num(inc_f)}x{self.hold - 1} {_num(last + inc_q)}+{_num(inc_q)}x{rest}"
        return f"{_num(series.firing)}x{self.hold - 1} {_num(series.quiet)}x{rest}"


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _window_series(case: Case) -> list[dict[str, str]]:
    """The window-end series the annotation links look up, unless the case lists its own."""
    if case.window_end is None or any(
        s.selector.startswith(WINDOW_END_METRIC + "{") for s in case.series
    ):
        return []
    keys = ("job", "instance", "model", "version", "segment")
    inner = ",".join(f'{k}="{case.labels[k]}"' for k in keys if case.labels.get(k))
    return [
        {"series": f"{WINDOW_END_METRIC}{{{inner}}}", "values": f"{_num(case.window_end)}x{10_000}"}
    ]


def _expected_alert(spec: AlertSpec, case: Case, settings: Settings) -> dict[str, Any]:
    labels = {k: v for k, v in case.labels.items() if v != ""}
    labels["severity"] = spec.severity
    rendered = Expected(labels, value=case.value, window_end=case.window_end)
    return {
        "exp_labels": labels,
        "exp_annotations": alert_annotations(spec, rendered, settings),
    }


def _inputs(case: Case, plan: TestPlan, firing: bool) -> list[dict[str, str]]:
    rows = [{"series": s.selector, "values": plan.values(s, firing)} for s in case.series]
    return [row for row in rows if row["values"] is not None]


def _tests_for(spec: AlertSpec, plan: TestPlan, settings: Settings) -> Iterable[dict[str, Any]]:
    for case in spec.cases:
        fired = [_expected_alert(spec, case, settings)]
        window = _window_series(case)
        checks = []
        if plan.pending_at is not None:
            checks.append(
                {"eval_time": f"{plan.pending_at}s", "alertname": spec.name, "exp_alerts": []}
            )
        checks.append(
            {"eval_time": f"{plan.fire_at}s", "alertname": spec.name, "exp_alerts": fired}
        )
        yield {
            "interval": f"{plan.interval}s",
            "input_series": _inputs(case, plan, True) + window,
            "alert_rule_test": checks,
        }
        yield {
            "interval": f"{plan.interval}s",
            "input_series": _inputs(case, plan, False) + window,
            "alert_rule_test": [
                {"eval_time": f"{plan.fire_at}s", "alertname": spec.name, "exp_alerts": []}
            ],
        }
        switchable = all(s.firing is not None and s.quiet is not None for s in case.series)
        if spec.keep_firing and plan.keep_s > 0 and switchable:
            yield {
                "interval": f"{plan.interval}s",
                "input_series": [
                    {"series": s.selector, "values": plan.switching_values(s)} for s in case.series
                ]
                + window,
                "alert_rule_test": [
                    {"eval_time": f"{plan.kept_at}s", "alertname": spec.name, "exp_alerts": fired},
                    {"eval_time": f"{plan.resolved_at}s", "alertname": spec.name, "exp_alerts": []},
                ],
            }


def _plan_for(spec: AlertSpec, plan: TestPlan, settings: Settings, options: RuleOptions) -> TestPlan:
    """The shared plan, or one with the rule's own ``for`` (drift rules with alert_windows > 1)."""
    if not spec.for_duration or spec.for_duration == options.for_duration:
        return plan
    return TestPlan(settings, replace(options, for_duration=spec.for_duration))


def rule_tests(
    settings: Settings, options: RuleOptions, alerts: Iterable[AlertSpec], rule_file: str
) -> dict[str, Any]:
    """The ``promtool test rules`` file for ``alerts`` loaded from ``rule_file``."""
    plan = TestPlan(settings, options)
    tests = [
        test for spec in alerts
        for test in _tests_for(spec, _plan_for(spec, plan, settings, options), settings)
    ]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{plan.interval}s",
        "tests": tests,
    }
