"""What the daemon logs, event by event (``monitor.logs``), and the text and JSON formats.

The sink is fed :class:`WindowReport` s as the pipeline publishes them (a close,
then updates as labels arrive), with verdicts chosen so that each transition is
known; ``test_core_daemon_logs`` checks the same lines from a daemon on the real
broker.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace

import numpy as np
import pytest
from kafka import TopicPartition

from detectors.base import DriftResult
from monitor.logs import JsonFormatter, RateLimitedLog, WindowLog, configure_logging, log_partitions
from monitor.results import MetricValue, WindowKey, WindowReport

KEY = WindowKey("credit", "v1", "region=eu")
T0 = 1_767_225_600.0


def report(
    index: int,
    drifted: tuple[str, ...] = (),
    model_drifted: bool = False,
    tested: bool = True,
    **extra,
) -> WindowReport:
    features = (
        [
            DriftResult(
                "wasserstein", name, 0.5 if name in drifted else 0.02, 0.001, 0.1, name in drifted
            )
            for name in ("num_0", "num_1", "num_2")
        ]
        if tested
        else []
    )
    return WindowReport(
        KEY,
        T0 + 300 * index,
        T0 + 300 * (index + 1),
        1000 + index,
        features=features,
        drift_share=len(drifted) / 3,
        model_drifted=model_drifted,
        **extra,
    )


def events(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "driftd", {}).get("event") == name]


def test_window_close_is_one_info_line_with_events_drift_and_performance(caplog) -> None:
    caplog.set_level(logging.INFO)
    sink = WindowLog()
    sink(
        report(
            0,
            ("num_0",),
            n_late=7,
            estimated_performance={"roc_auc": MetricValue(0.881, 0.85, 0.9)},
        )
    )
    (line,) = events(caplog, "window_closed")
    assert line.levelno == logging.INFO
    text = line.getMessage()
    assert "credit v1 region=eu" in text and "n=1,000 (+7 late)" in text
    assert (
        "drifted 1 of 3 features (num_0), drift share 0.33" in text
        and "estimated roc_auc 0.881" in text
    )
    assert line.driftd["drifted_features"] == ["num_0"] and line.driftd["n_events"] == 1000
    # The same window again (labels arrived): an update, not a second close.
    sink(replace(report(0, ("num_0",)), n_labels=500))
    assert len(events(caplog, "window_closed")) == 1
    sink(report(1, tested=False))
    assert "too few events to test" in events(caplog, "window_closed")[-1].getMessage()


def test_drift_start_and_clear_are_warnings_once_per_transition(caplog) -> None:
    caplog.set_level(logging.INFO)
    sink = WindowLog()
    sink(report(0))
    sink(report(1, ("num_0", "num_1"), model_drifted=True))
    sink(report(2, ("num_0", "num_1"), model_drifted=True))  # still drifting: nothing new
    sink(report(3, tested=False))  # not tested: neither cleared nor started
    sink(report(4, ("num_1",)))
    started, cleared = events(caplog, "drift_started"), events(caplog, "drift_cleared")
    assert [(r.driftd["feature"], r.levelno) for r in started] == [
        ("num_0", logging.WARNING),
        ("num_1", logging.WARNING),
        ("(model)", logging.WARNING),
    ]
    assert [r.driftd["feature"] for r in cleared] == ["num_0", "(model)"]
    assert cleared[0].driftd["window_start"] == T0 + 1200
    assert (
        "drift started: credit v1 region=eu num_0 (wasserstein 0.5, threshold 0.1, p-value 0.001) in window "
        "2026-01-01 00:05–00:10 UTC" == started[0].getMessage()
    )
    assert (
        "drift cleared: credit v1 region=eu num_0 (wasserstein 0.02, threshold 0.1"
        in cleared[0].getMessage()
    )


def test_performance_drop_and_recovery_follow_the_alert_rule(caplog) -> None:
    caplog.set_level(logging.INFO)
    sink = WindowLog(performance_tolerance=0.05)
    baseline = {"accuracy": 0.80}
    good = {"accuracy": MetricValue(0.79, 0.77, 0.81)}
    bad = {"accuracy": MetricValue(0.21, 0.19, 0.24)}
    few = {
        "accuracy": MetricValue(0.30, float("nan"), float("nan"))
    }  # no interval: decides nothing
    sink(report(0, n_labels=900, performance=good, baseline_performance=baseline))
    sink(report(1, n_labels=3, performance=few, baseline_performance=baseline))
    assert not events(caplog, "performance_dropped")
    sink(report(2, n_labels=900, performance=bad, baseline_performance=baseline))
    sink(report(3, n_labels=900, performance=bad, baseline_performance=baseline))
    (dropped,) = events(caplog, "performance_dropped")
    assert dropped.levelno == logging.WARNING and dropped.driftd["metric"] == "accuracy"
    assert (
        "accuracy 0.210 (95 % interval 0.190–0.240, 900 labels) vs baseline 0.800"
        in dropped.getMessage()
    )
    # Labels of an older window arriving later do not flip the state back.
    sink(replace(report(1), n_labels=900, performance=good, baseline_performance=baseline))
    assert not events(caplog, "performance_recovered")
    sink(report(4, n_labels=900, performance=good, baseline_performance=baseline))
    (recovered,) = events(caplog, "performance_recovered")
    assert recovered.driftd["window_start"] == T0 + 1200


def test_window_log_state_is_bounded() -> None:
    sink = WindowLog(max_keys=10)
    for i in range(100):
        sink(replace(report(0), key=WindowKey("m", "1", f"s{i}")))
    assert len(sink._state) == 10


def test_rate_limited_log_writes_the_first_and_counts_the_rest(caplog) -> None:
    caplog.set_level(logging.INFO)
    now = [0.0]
    limiter = RateLimitedLog(
        logging.getLogger("test.rate"), interval=60.0, clock=lambda: now[0], max_keys=2
    )
    assert limiter.log("not_json", "bad event %s", 1, event="invalid_event", reason="not_json")
    for i in range(41):
        now[0] += 1.0
        assert not limiter.log(
            "not_json", "bad event %s", i + 2, event="invalid_event", reason="not_json"
        )
    assert limiter.log("schema", "bad event %s", "s")  # another key is not held back
    now[0] += 60.0
    assert limiter.log("not_json", "bad event %s", 99, event="invalid_event", reason="not_json")
    lines = [r for r in caplog.records if r.name == "test.rate"]
    assert [r.getMessage() for r in lines] == [
        "bad event 1",
        "bad event s",
        "bad event 99 (+41 more since the last line)",
    ]
    assert lines[2].driftd == {
        "event": "invalid_event",
        "count": 1,
        "suppressed": 41,
        "reason": "not_json",
    }
    assert lines[0].levelno == logging.WARNING
    limiter.log("third", "x")  # past max_keys: the oldest key is forgotten
    assert len(limiter._keys) == 2
    now[0] += 1.0
    limiter.log("third", "x again")
    limiter.flush()
    assert caplog.records[-1].getMessage() == "x again (+1 more since the last line)"


def test_partitions_assigned_names_topics_and_partitions(caplog) -> None:
    caplog.set_level(logging.INFO)
    log_partitions({TopicPartition("p", 1), TopicPartition("p", 0), TopicPartition("l", 0)}, 3)
    log_partitions(set(), 3)  # nothing new: no line
    (line,) = events(caplog, "partitions_assigned")
    assert (
        line.getMessage()
        == "partitions assigned: l [0]; p [0, 1] (3 assigned to this daemon in total)"
    )
    assert line.driftd["partitions"] == {"l": [0], "p": [0, 1]}


def test_json_format_is_one_object_per_line_with_the_event_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        WindowLog()(
            report(0, ("num_0",), estimated_performance={"accuracy": MetricValue(np.float64(0.8))})
        )
        logging.getLogger("monitor.x").info("plain %s", "line")
    finally:
        configure_logging("warning", "text")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    closed = next(line for line in lines if line.get("event") == "window_closed")
    assert closed["level"] == "info" and closed["logger"] == "monitor.windows"
    assert closed["model"] == "credit" and closed["drifted_features"] == ["num_0"]
    assert closed["performance"] == {"accuracy": 0.8} and closed["time"].endswith("+00:00")
    assert lines[-1]["message"] == "plain line" and "event" not in lines[-1]
    with pytest.raises(ValueError, match="allowed: text, json"):
        configure_logging("info", "xml")
    with pytest.raises(ValueError, match="allowed: debug, info, warning, error"):
        configure_logging("loud", "text")


def test_json_formatter_keeps_exceptions() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "failed" and "RuntimeError: boom" in document["exception"]
