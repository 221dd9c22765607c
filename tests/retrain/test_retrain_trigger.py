"""The retrain trigger (a fold over window reports) and the event it becomes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import DriftResult
from monitor.results import PREDICTION, AttributionSummary, MetricValue, WindowKey, WindowReport
from monitor.retrain.request import build_request
from monitor.retrain.trigger import RetrainTrigger

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "retrain_request.v1.json").read_text())
KEY = WindowKey("credit", "v1", "region=eu")
FLAGGED = [DriftResult("psi", "num_0", 0.41, None, 0.2, True), DriftResult("ks", "num_1", 0.05, 0.3, 0.05, False)]
CALM = [DriftResult("psi", "num_0", 0.01, None, 0.2, False)]


def window(i: int, drifted: bool = True, key: WindowKey = KEY, **kwargs) -> WindowReport:
    return WindowReport(key, 300.0 * i, 300.0 * (i + 1), 1000, features=FLAGGED if drifted else CALM,
                        model_drifted=drifted, drift_share=0.5 if drifted else 0.0, **kwargs)


def fold(trigger: RetrainTrigger, reports: list[WindowReport]) -> list:
    return [d for d in (trigger.update(r) for r in reports) if d is not None]


def test_n_consecutive_drifted_windows_decide_once_per_run():
    trigger = RetrainTrigger(consecutive_windows=3)
    decisions = fold(trigger, [window(0), window(1), window(2, drifted=False), window(3), window(4), window(5)])
    assert len(decisions) == 1
    assert decisions[0].reason == "drift_persisted"
    assert [w.window_start for w in decisions[0].windows] == [900.0, 1200.0, 1500.0]
    # The run starts afresh after a decision.
    assert fold(trigger, [window(6), window(7)]) == []
    assert len(fold(trigger, [window(8)])) == 1


def test_updates_of_seen_windows_and_untested_windows_do_not_extend_a_run():
    trigger = RetrainTrigger(consecutive_windows=2, performance_trigger=False)
    untested = WindowReport(KEY, 300.0, 600.0, 10)  # below min_events: no features tested
    assert fold(trigger, [window(0), window(0), untested, window(0)]) == []
    assert len(fold(trigger, [window(2)])) == 1  # the untested window neither broke nor extended the run


def test_keys_are_independent_and_bounded():
    other = WindowKey("credit", "v1", "region=us")
    trigger = RetrainTrigger(consecutive_windows=2, max_keys=1)
    assert fold(trigger, [window(0), window(0, key=other), window(1)]) == []  # the eu run was forgotten
    assert len(trigger._newest) == 1


def test_decision_mode_and_off():
    assert fold(RetrainTrigger(drift_trigger="decision"), [window(0)])[0].reason == "drift_decision"
    assert fold(RetrainTrigger(drift_trigger="off", consecutive_windows=1), [window(0), window(1)]) == []


def test_performance_drop_decides_when_labels_arrive():
    trigger = RetrainTrigger(consecutive_windows=5, performance_tolerance=0.05, min_labels=30)
    base = {"roc_auc": 0.88}
    few = window(0, drifted=False, n_labels=10, performance={"roc_auc": MetricValue(0.6, 0.55, 0.65)}, baseline_performance=base)
    fine = window(0, drifted=False, n_labels=500, performance={"roc_auc": MetricValue(0.87, 0.85, 0.89)}, baseline_performance=base)
    dropped = window(0, drifted=False, n_labels=500, performance={"roc_auc": MetricValue(0.6, 0.55, 0.65)}, baseline_performance=base)
    decisions = fold(trigger, [few, fine, dropped])
    assert [(d.reason, d.metric) for d in decisions] == [("performance_dropped", "roc_auc")]
    assert fold(RetrainTrigger(performance_trigger=False), [dropped]) == []


def test_the_event_has_every_field_and_matches_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    prediction = DriftResult("jensen_shannon", PREDICTION, 0.3, math.nan, 0.1, True)
    newest = window(
        2, n_labels=400, prediction=[prediction],
        performance={"roc_auc": MetricValue(0.61, 0.55, 0.66)}, baseline_performance={"roc_auc": 0.88},
        attribution=AttributionSummary(0.7, True, 0.9, 50, {"num_0": 0.3}, {"num_0": 1.5, "num_1": math.inf}),
    )
    trigger = RetrainTrigger(consecutive_windows=3)
    decision = fold(trigger, [window(0), window(1), newest])[0]
    created = datetime(2026, 12, 4, 12, 0, 1, tzinfo=UTC)
    event = build_request(decision, "0b7c0e4e-6f2b-4f5e-8f0a-2b9f3f1f7f10", created,
                          app_url="http://app:8501/", cooldown_seconds=86400, performance_tolerance=0.05)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(event)
    assert set(event) == set(SCHEMA["required"])
    assert event["drifted_features"] == [
        {"feature": "num_0", "method": "psi", "score": 0.41, "p_value": None, "threshold": 0.2},
        {"feature": PREDICTION, "method": "jensen_shannon", "score": 0.3, "p_value": None, "threshold": 0.1},
    ]
    assert event["label_coverage"] == 0.4
    assert event["performance"] is None  # a drift decision names no metric
    assert event["attribution_change"]["relative_change"] == {"num_0": 1.5, "num_1": None}
    assert event["windows"][0]["start"] == "1970-01-01T00:00:00Z" and event["windows"][-1]["end"] == "1970-01-01T00:15:00Z"
    assert event["app_link"] == ("http://app:8501/?page=model&model=credit&version=v1&segment=region%3Deu"
                                 "&start=1970-01-01T00%3A00%3A00Z&end=1970-01-01T00%3A15%3A00Z")
    assert event["created_at"] == "2026-12-04T12:00:01.000000Z"

    performance = fold(RetrainTrigger(drift_trigger="off"), [newest])[0]
    event = build_request(performance, "0b7c0e4e-6f2b-4f5e-8f0a-2b9f3f1f7f11", created,
                          app_url="http://app:8501", cooldown_seconds=60, performance_tolerance=0.05)
    jsonschema.Draft202012Validator(SCHEMA).validate(event)
    assert event["performance"] == {"metric": "roc_auc", "value": 0.61, "lower": 0.55, "upper": 0.66,
                                    "baseline": 0.88, "tolerance": 0.05}


@settings(max_examples=200, deadline=None)
@given(drifted=st.lists(st.booleans(), max_size=60), n=st.integers(1, 5), repeats=st.lists(st.integers(0, 59), max_size=20))
def test_decisions_are_whole_runs_of_n_and_updates_change_nothing(drifted, n, repeats):
    trigger = RetrainTrigger(consecutive_windows=n, performance_trigger=False)
    reports = [window(i, drifted=d) for i, d in enumerate(drifted)]
    stream = list(reports)
    for i in repeats:  # updates of windows already seen, interleaved after them
        if i < len(reports):
            stream.insert(stream.index(reports[i]) + 1, reports[i])
    decisions = fold(trigger, stream)
    expected, run = [], 0
    for i, d in enumerate(drifted):
        run = run + 1 if d else 0
        if run == n:
            expected.append(i)
            run = 0
    assert [d.windows[-1].window_start / 300 for d in decisions] == expected
    assert all(len(d.windows) == n and all(w.model_drifted for w in d.windows) for d in decisions)


def test_the_example_in_docs_matches_the_schema():
    import re

    jsonschema = pytest.importorskip("jsonschema")
    text = (Path(__file__).resolve().parents[2] / "docs" / "retraining.md").read_text(encoding="utf-8")
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL).group(1))
    jsonschema.Draft202012Validator(SCHEMA).validate(example)
    assert set(example) == set(SCHEMA["required"])
