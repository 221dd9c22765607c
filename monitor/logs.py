"""Daemon logs worth reading: text or JSON lines, rate-limited warnings, window and drift lines.

What ``driftd run`` logs, and at which level:

========================  =======  ============================================================
event                     level    when
========================  =======  ============================================================
``startup``               info     once per model at start: baseline (sha256), model file, task
``partitions_assigned``   info     the consumer group hands this daemon partitions
``window_closed``         info     every window close: events, late events, drifted features,
                                   drift share, performance (realised, else estimated)
``drift_started``         warning  a feature, the prediction or the model starts drifting
``drift_cleared``         warning  ... and stops (the first tested window without it)
``performance_dropped``   warning  labels show a drop beyond the ``DriftdPerformanceDrop`` rule
``performance_recovered`` warning  ... and the next labelled window no longer does
``invalid_event``         warning  an event was dead-lettered (rate-limited per reason)
========================  =======  ============================================================

``--log-format json`` writes one JSON object per line (``time``, ``level``,
``logger``, ``message``, plus ``event`` and that event's fields) for log shippers.
Everything kept here is bounded by the number of window keys.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from monitor.findings import pretty_feature, worst_metric
from monitor.results import WindowKey, WindowReport

__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "RateLimitedLog",
    "WindowLog",
    "configure_logging",
    "invalid_event_log",
    "log_event",
    "log_partitions",
]

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_METRICS = ("roc_auc", "accuracy", "f1", "rmse", "mae", "log_loss", "precision", "recall")

log = logging.getLogger("monitor.windows")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, event fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (getattr(record, "driftd", None) or {}).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(
            document, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        ).decode()


def configure_logging(
    level: str = "info", fmt: str = "text", stream: IO[str] | None = None
) -> None:
    """Set up the root logger for a command (replacing earlier handlers).

    Raises
    ------
    ValueError
        For a level or format not in :data:`LEVELS` / :data:`FORMATS`; the message names both.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"--log-level: {level!r} is not allowed; allowed: {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"--log-format: {fmt!r} is not allowed; allowed: {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def log_event(
    logger: logging.Logger, level: int, event: str, message: str, *args: Any, **fields: Any
) -> None:
    """Log ``message % args`` with ``event`` and ``fields`` attached (shown by the JSON format)."""
    logger.log(level, message, *args, extra={"driftd": {"event": event, **fields}})


class RateLimitedLog:
    """At most one line per key every ``interval`` seconds; what it held back is counted.

    Use one instance per kind of repeated event, keyed by what should be reported
    separately (a dead-letter reason, a model)::

        late = RateLimitedLog(logging.getLogger(__name__), interval=60.0)
        late.log(model, "late events of %s dropped (window %s)", model, window, n=n_late,
                 event="late_events", model=model)

    * The first call for a key writes a line at once; calls within ``interval`` of
      the last written line only add their ``n`` to the key's count; the next line
      written for that key says how many were held back (``(+41 more since the last
      line)``; ``suppressed`` in JSON).
    * ``log`` returns whether it wrote a line. ``flush()`` writes one line for every
      key with held-back events (call it on shutdown).
    * Extra keyword arguments are the event's fields (``event=`` names the event,
      default ``"rate_limited"``). At most ``max_keys`` keys are tracked; the
      oldest is forgotten first, so memory stays bounded.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        level: int = logging.WARNING,
        max_keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.interval, self.level = logger, float(interval), level
        self.max_keys, self.clock = max_keys, clock
        # key -> [time of the last line, events held back, last message, args, fields]
        self._keys: OrderedDict[Any, list[Any]] = OrderedDict()

    def log(self, key: Any, message: str, *args: Any, n: int = 1, **fields: Any) -> bool:
        now = self.clock()
        state = self._keys.get(key)
        if state is not None and now - state[0] < self.interval:
            state[1] += n
            state[2:] = [message, args, fields]
            return False
        held = state[1] if state is not None else 0
        self._write(message, args, fields, n, held)
        self._keys[key] = [now, 0, message, args, fields]
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return True

    def flush(self) -> None:
        for state in self._keys.values():
            if state[1]:
                self._write(state[2], state[3], state[4], 0, state[1])
                state[1] = 0

    def _write(self, message: str, args: tuple, fields: dict[str, Any], n: int, held: int) -> None:
        event = fields.pop("event", "rate_limited")
        suffix = f" (+{held:,} more since the last line)" if held else ""
        log_event(
            self.logger,
            self.level,
            event,
            message + suffix,
            *args,
            count=n,
            suppressed=held,
            **fields,
        )
        fields["event"] = event


def _when(start: float, end: float) -> str:
    clock = "%H:%M:%S" if start % 60 or end % 60 else "%H:%M"  # windows shorter than a minute
    first, last = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return f"{first:%Y-%m-%d} {first.strftime(clock)}–{last.strftime(clock)} UTC"


def _where(key: WindowKey) -> str:
    return " ".join(p for p in (key.model, key.version, key.segment) if p)


def _performance(report: WindowReport) -> tuple[str, dict[str, float]]:
    """("realised"|"estimated"|"", {metric: value}) of the window's preferred metrics."""
    for kind, values in (
        ("realised", report.performance),
        ("estimated", report.estimated_performance),
    ):
        chosen = {m: float(values[m].value) for m in _METRICS if m in values}
        if chosen:
            return kind, dict(list(chosen.items())[:2])
    return "", {}


class WindowLog:
    """The report sink that logs window closes and drift and performance transitions.

    Registered by the daemon beside the store sink; called with every new or updated
    :class:`WindowReport`. A report for a newer window than the key's last one is a
    close; an older or equal one is an update (labels, attributions), which only
    matters for performance transitions.
    """

    def __init__(
        self,
        performance_tolerance: float = 0.05,
        logger: logging.Logger | None = None,
        max_keys: int = 10_000,
    ) -> None:
        self.tolerance = performance_tolerance
        self.logger = logger or log
        self.max_keys = max_keys
        # key -> [newest window start, drifted names, model drifted, newest labelled start, dropped metric]
        self._state: OrderedDict[WindowKey, list[Any]] = OrderedDict()

    def __call__(self, report: WindowReport) -> None:
        state = self._state.get(report.key)
        if state is None:
            state = self._state[report.key] = [float("-inf"), set(), False, float("-inf"), None]
            while len(self._state) > self.max_keys:
                self._state.popitem(last=False)
        if report.window_start > state[0]:
            state[0] = report.window_start
            self._closed(report)
            if report.features:  # windows with too few events are not tested: no transition
                self._drift(report, state)
        if report.n_labels and report.window_start >= state[3]:
            state[3] = report.window_start
            self._labels(report, state)

    def _closed(self, report: WindowReport) -> None:
        drifted = [r.feature for r in report.features if r.drifted]
        kind, performance = _performance(report)
        shown = ", ".join(f"{m} {v:.3f}" for m, v in performance.items())
        tested = (
            (
                f"drifted {len(drifted)} of {len(report.features)} features"
                + (
                    f" ({', '.join(drifted[:8])}{', …' if len(drifted) > 8 else ''})"
                    if drifted
                    else ""
                )
                + f", drift share {report.drift_share:.2f}"
            )
            if report.features
            else "too few events to test"
        )
        late = f" (+{report.n_late:,} late)" if report.n_late else ""
        log_event(
            self.logger,
            logging.INFO,
            "window_closed",
            "window closed: %s %s n=%s%s; %s%s",
            _where(report.key),
            _when(report.window_start, report.window_end),
            f"{report.n_events:,}",
            late,
            tested,
            f"; {kind} {shown}" if shown else "",
            model=report.key.model,
            version=report.key.version,
            segment=report.key.segment,
            window_start=report.window_start,
            window_end=report.window_end,
            n_events=report.n_events,
            n_late=report.n_late,
            drifted_features=drifted,
            drift_share=report.drift_share,
            model_drifted=report.model_drifted,
            performance=performance,
            performance_kind=kind,
        )

    def _drift(self, report: WindowReport, state: list[Any]) -> None:
        verdicts = {
            r.feature: r for r in (*report.features, *report.prediction, *report.multivariate)
        }
        now = {name for name, r in verdicts.items() if r.drifted}
        before: set[str] = state[1]
        for name in sorted(now - before):
            self._transition("drift_started", report, name, verdicts[name])
        for name in sorted(before - now):
            verdict = verdicts.get(name)
            if verdict is not None:  # not tested this window (e.g. no scores): keep the state
                self._transition("drift_cleared", report, name, verdict)
        state[1] = {n for n in before if n not in verdicts} | now
        if report.model_drifted != state[2]:
            event = "drift_started" if report.model_drifted else "drift_cleared"
            log_event(
                self.logger,
                logging.WARNING,
                event,
                "%s: %s model drift share %.2f in window %s",
                "model drift started" if report.model_drifted else "model drift cleared",
                _where(report.key),
                report.drift_share,
                _when(report.window_start, report.window_end),
                model=report.key.model,
                version=report.key.version,
                segment=report.key.segment,
                feature="(model)",
                drift_share=report.drift_share,
                window_start=report.window_start,
            )
            state[2] = report.model_drifted

    def _transition(self, event: str, report: WindowReport, name: str, verdict: Any) -> None:
        tested = f"{verdict.method} {verdict.score:.4g}, threshold {verdict.threshold:.4g}"
        if verdict.p_value is not None:
            tested += f", p-value {verdict.p_value:.2g}"
        log_event(
            self.logger,
            logging.WARNING,
            event,
            "%s: %s %s (%s) in window %s",
            event.replace("_", " "),
            _where(report.key),
            pretty_feature(name),
            tested,
            _when(report.window_start, report.window_end),
            model=report.key.model,
            version=report.key.version,
            segment=report.key.segment,
            feature=name,
            method=verdict.method,
            score=verdict.score,
            threshold=verdict.threshold,
            p_value=verdict.p_value,
            window_start=report.window_start,
        )

    def _labels(self, report: WindowReport, state: list[Any]) -> None:
        raw = {m: list(v) for m, v in report.performance.items()}
        metric = worst_metric(raw, report.baseline_performance, self.tolerance)
        previous = state[4]
        where = {
            "model": report.key.model,
            "version": report.key.version,
            "segment": report.key.segment,
            "window_start": report.window_start,
        }
        if metric is not None and previous is None:
            value, lower, upper = raw[metric][:3]
            baseline = report.baseline_performance.get(metric, float("nan"))
            log_event(
                self.logger,
                logging.WARNING,
                "performance_dropped",
                "performance dropped: %s %s %.3f (95 %% interval %.3f–%.3f, %d labels) vs baseline %.3f "
                "in window %s",
                _where(report.key),
                metric,
                value,
                lower,
                upper,
                report.n_labels,
                baseline,
                _when(report.window_start, report.window_end),
                metric=metric,
                value=value,
                baseline=baseline,
                **where,
            )
        elif metric is None and previous is not None:
            if previous not in raw:
                return  # this window says nothing about the metric that dropped
            baseline = report.baseline_performance.get(previous, float("nan"))
            log_event(
                self.logger,
                logging.WARNING,
                "performance_recovered",
                "performance recovered: %s %s %.3f vs baseline %.3f in window %s",
                _where(report.key),
                previous,
                raw[previous][0],
                baseline,
                _when(report.window_start, report.window_end),
                metric=previous,
                value=raw[previous][0],
                baseline=baseline,
                **where,
            )
        state[4] = metric


def log_partitions(
    assigned: Iterable[Any], total: int, logger: logging.Logger | None = None
) -> None:
    """Log newly assigned partitions (``TopicPartition``-like: ``topic``, ``partition``)."""
    by_topic: dict[str, list[int]] = {}
    for tp in assigned:
        by_topic.setdefault(tp.topic, []).append(int(tp.partition))
    if not by_topic:
        return
    shown = "; ".join(
        f"{topic} [{', '.join(map(str, sorted(p)))}]" for topic, p in sorted(by_topic.items())
    )
    log_event(
        logger or logging.getLogger("monitor.consumer"),
        logging.INFO,
        "partitions_assigned",
        "partitions assigned: %s (%d assigned to this daemon in total)",
        shown,
        total,
        partitions={t: sorted(p) for t, p in by_topic.items()},
        total=total,
    )


def invalid_event_log(interval: float = 60.0) -> RateLimitedLog:
    """The consumer's rate-limited log of dead-lettered events, one key per reason."""
    return RateLimitedLog(logging.getLogger("monitor.consumer"), interval=interval)
