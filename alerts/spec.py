"""The pieces every alert is made of: options, alert and test-case records, label helpers.

An :class:`AlertSpec` carries an alert's PromQL, severity, texts and the unit-test
cases that show it firing and staying quiet, so that rules and their ``promtool``
tests cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Literal

from alerts.errors import AlertsError
from alerts.templating import Renderer
from monitor.config import Settings

__all__ = [
    "AlertSpec",
    "Case",
    "Context",
    "RecordingRule",
    "RuleOptions",
    "Series",
    "base_labels",
    "model_labels",
    "parse_duration",
    "rate_suffix",
    "sel",
    "where",
]

Severity = Literal["critical", "warning", "info"]
Scope = Literal["feature", "model", "pipeline"]

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


def parse_duration(text: str, key: str = "duration") -> float:
    """Seconds in a Prometheus duration such as ``5m`` or ``1h30m``.

    >>> parse_duration("1h30m")
    5400.0
    """
    if not text or _DURATION.sub("", text) != "":
        raise AlertsError(f"{key}: {text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return float(sum(int(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text)))


@dataclass(frozen=True)
class RuleOptions:
    """Thresholds and windows of the generated rules (defaults are documented in docs/alerts.md).

    :meth:`from_settings` fills every field from the ``alerts`` section of the
    configuration; the class defaults equal the configuration's.
    """

    job: str = "driftd"
    for_duration: str = "5m"
    keep_firing_for: str = "10m"
    rate_window: str = "5m"
    performance_tolerance: float = 0.05
    ece_increase: float = 0.05
    missing_increase: float = 0.10
    unseen_ratio: float = 0.05
    dead_letter_ratio: float = 0.01
    consumer_lag: float = 10_000
    explain_queue_ratio: float = 0.9
    concept_alarm_window: str = "30m"
    concept_alarm_detectors: int = 2

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> RuleOptions:
        configured = settings.alerts
        options = cls(**{f.name: getattr(configured, f.name) for f in fields(cls)})
        options = replace(options, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
        options.validate()
        return options

    def validate(self) -> None:
        parse_duration(self.for_duration, "alerts.for_duration")
        parse_duration(self.keep_firing_for, "alerts.keep_firing_for")
        if parse_duration(self.concept_alarm_window, "alerts.concept_alarm_window") <= 0:
            raise AlertsError(f"alerts.concept_alarm_window: must be longer than 0 (got {self.concept_alarm_window!r})")
        if parse_duration(self.rate_window, "alerts.rate_window") <= 0:
            raise AlertsError(f"alerts.rate_window: must be longer than 0 (got {self.rate_window!r})")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-.]*", self.job):
            raise AlertsError(f"alerts.job: {self.job!r} is not a usable Prometheus job name")


@dataclass(frozen=True)
class Series:
    """One input series of a unit test.

    ``firing``/``quiet`` give the value while the alert should fire / stay quiet
    (``None``: the series does not exist). For ``counter`` series they are the
    increase per second instead.
    """

    selector: str
    firing: float | None
    quiet: float | None
    counter: bool = False


@dataclass(frozen=True)
class Case:
    """Inputs under which an alert fires with ``labels`` and ``value``, and stays quiet."""

    series: tuple[Series, ...]
    labels: dict[str, str]
    value: float
    # Value of the alert's WINDOW_END_METRIC series (added by the test generator when
    # no series of that name is listed); None when the alert has no window.
    window_end: float | None = None


@dataclass(frozen=True)
class AlertSpec:
    """One alerting rule, its texts and its unit-test cases."""

    name: str
    group: str
    severity: Severity
    scope: Scope
    expr: str
    summary: str
    describe: Callable[[Renderer], str]
    cases: tuple[Case, ...]
    keep_firing: bool = False
    # ``for`` of this rule when it differs from alerts.for_duration (drift rules: drift.alert_windows).
    for_duration: str | None = None


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    group: str = "driftd-recording"


@dataclass(frozen=True)
class Context:
    """What the alert builders read: settings, options, and the unit tests' window end."""

    settings: Settings
    options: RuleOptions
    window_end: float = 1_700_000_000.0


def sel(metric: str, labels: dict[str, str]) -> str:
    """A series selector ``metric{a="b",...}`` (labels with empty values left out)."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items() if v != "")
    return f"{metric}{{{inner}}}"


def rate_suffix(options: RuleOptions) -> str:
    """``rate5m`` for a 5m window: the last part of recording-rule names."""
    return f"rate{options.rate_window}"


def where(r: Renderer, feature: bool = False) -> str:
    """The alert's subject, e.g. "model M version V (segment 'S')", optionally with its feature."""
    text = f"model {r.label('model')} version {r.label('version')} (segment '{r.label('segment')}')"
    return f"feature {r.label('feature')} of {text}" if feature else text


# Labels of the series in the generated unit tests.
BASE_LABELS = {"job": "", "instance": "driftd-0:9108"}


def base_labels(ctx: Context) -> dict[str, str]:
    return {**BASE_LABELS, "job": ctx.options.job}


def model_labels(ctx: Context, segment: str = "region=eu") -> dict[str, str]:
    return {**base_labels(ctx), "model": "fraud", "version": "v1", "segment": segment}
