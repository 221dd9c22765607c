"""``monitor.findings`` on stored windows: each kind of problem, its limit and since-when.

Windows are written through the store's own API (``write_reports``) on SQLite and
PostgreSQL; ``now`` is fixed so that staleness is exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from detectors.base import DriftResult
from monitor.config import load_settings
from monitor.findings import find_problems
from monitor.results import PREDICTION, MetricValue, WindowKey, WindowReport

T0 = 1_767_225_600.0
STEP = 300.0
SETTINGS = load_settings(
    None, windows={"size_seconds": 300, "allowed_lateness_seconds": 60, "min_events": 100}
)


def window(
    model: str,
    index: int,
    *,
    version: str = "v1",
    segment: str = "",
    n: int = 1000,
    drifted: tuple[str, ...] = (),
    prediction_drifted: bool = False,
    **extra,
) -> WindowReport:
    features = (
        []
        if n < 100
        else [
            DriftResult("psi", name, 0.5 if name in drifted else 0.01, None, 0.2, name in drifted)
            for name in ("a", "b", "c")
        ]
    )
    report = WindowReport(
        WindowKey(model, version, segment),
        T0 + index * STEP,
        T0 + (index + 1) * STEP,
        n,
        features=features,
        drift_share=len(drifted) / 3,
        model_drifted=len(drifted) >= 1 and len(drifted) / 3 >= 0.3,
        closed_at=T0 + (index + 1) * STEP,
        **extra,
    )
    if prediction_drifted:
        report.prediction = [DriftResult("chisquare", PREDICTION, 0.4, 1e-9, 0.1, True)]
    return report


def now_after(index: int, seconds: float = 60.0) -> datetime:
    return datetime.fromtimestamp(T0 + (index + 1) * STEP + seconds, UTC)


def kinds(found) -> list[tuple[str, str, str]]:
    return [(f.what, f.model, f.segment) for f in found]


def test_drift_since_is_the_start_of_the_run_skipping_untested_windows(store) -> None:
    store.write_reports(
        [
            window("m", 0),
            window("m", 1, drifted=("a",)),
            window("m", 2),
            window("m", 3, drifted=("a", "b")),
            window("m", 4, n=20),
            window("m", 5, drifted=("a",)),
        ]
    )
    (found,) = find_problems(store, SETTINGS, now=now_after(5))
    assert (found.what, found.severity, found.subject) == (
        "drift",
        "critical",
        "a (1 of the inputs, share 0.33)",
    )
    # Window 2 did not flag "a": the run starts at 3; window 4 had too few events to test.
    assert found.since == datetime.fromtimestamp(T0 + 3 * STEP, UTC)
    assert found.value == pytest.approx(0.5 / 0.2) and found.limit == 1.0
    assert found.link.startswith("?model=m&version=v1&feature=a&from=")


def test_prediction_drift_alone_is_a_finding(store) -> None:
    store.write_reports([window("m", 0, prediction_drifted=True)])
    (found,) = find_problems(store, SETTINGS, now=now_after(0))
    assert found.subject == "prediction" and found.severity == "warning"


def test_performance_drop_uses_the_alert_rule_and_its_interval(store) -> None:
    baseline = {"accuracy": 0.80}
    store.write_reports(
        [
            window(
                "p",
                0,
                segment="eu",
                n_labels=800,
                performance={"accuracy": MetricValue(0.78, 0.75, 0.81)},
                baseline_performance=baseline,
            ),
            window(
                "p",
                1,
                segment="eu",
                n_labels=800,
                performance={"accuracy": MetricValue(0.30, 0.27, 0.33)},
                baseline_performance=baseline,
            ),
            window(
                "p", 2, segment="eu", n_labels=0, baseline_performance=baseline
            ),  # labels not in yet
            window(
                "p",
                1,
                segment="us",
                n_labels=800,
                performance={"accuracy": MetricValue(0.74, 0.70, 0.78)},
                baseline_performance=baseline,
            ),  # 7 % below, but its interval reaches 0.78 > 0.76
        ]
    )
    found = find_problems(store, SETTINGS, now=now_after(2))
    (drop,) = [f for f in found if f.what == "performance drop"]
    assert (drop.segment, drop.subject, drop.severity) == ("eu", "accuracy", "critical")
    assert drop.value == pytest.approx(0.30) and drop.limit == pytest.approx(0.80 * 0.95)
    assert drop.since == datetime.fromtimestamp(T0 + STEP, UTC)
    assert "0.300 (95 % interval 0.270–0.330, 800 labels) vs baseline 0.800" in drop.detail


def test_calibration_needs_enough_labels(store) -> None:
    calibration = {"ece_equal_width": 0.16}
    baseline = {"ece_equal_width": 0.02}
    store.write_reports(
        [
            window(
                "c",
                0,
                segment="few",
                n_labels=40,
                calibration=calibration,
                baseline_calibration=baseline,
            ),
            window(
                "c",
                0,
                segment="many",
                n_labels=400,
                calibration=calibration,
                baseline_calibration=baseline,
            ),
        ]
    )
    (found,) = find_problems(store, SETTINGS, now=now_after(0))
    assert (found.what, found.segment, found.value) == ("calibration", "many", pytest.approx(0.16))
    assert found.limit == pytest.approx(0.02 + SETTINGS.alerts.ece_increase)


def test_late_heavy_streams(store) -> None:
    store.write_reports(
        [window("l", 0, n_late=10), window("l", 1, n_late=200), window("l", 2, n_late=150)]
    )
    (found,) = find_problems(store, SETTINGS, now=now_after(2))
    assert (found.what, found.limit) == ("late events", SETTINGS.alerts.late_ratio)
    assert found.value == pytest.approx(150 / 1150) and found.since == datetime.fromtimestamp(
        T0 + STEP, UTC
    )
    back = store.windows("l")
    assert [w.n_late for w in back] == [10, 200, 150]


def test_stale_only_for_the_newest_version_and_from_one_setting(store) -> None:
    store.write_reports(
        [window("s", 0, version="v1"), window("s", 8, version="v2"), window("t", 0)]
    )
    stale_after = SETTINGS.stale_window_seconds
    assert stale_after == 2 * 300 + 60
    now = datetime.fromtimestamp(T0 + 9 * STEP + stale_after - 1, UTC)
    found = find_problems(store, SETTINGS, now=now)
    # s v1 is retired (v2 is newer); s v2 is within the limit; t is long stale.
    assert kinds(found) == [("stale", "t", "")]
    assert found[0].value == pytest.approx(
        (now - datetime.fromtimestamp(T0 + STEP, UTC)).total_seconds()
    )
    assert found[0].limit == stale_after and found[0].link == "?page=model&model=t&version=v1"
    patient = load_settings(None, alerts={"stale_window_seconds": 1e7})
    assert find_problems(store, patient, now=now + timedelta(days=1)) == []


def test_open_alerts_are_listed_beside_the_findings(store) -> None:
    from monitor.store.schema import IncidentRow

    with store.session() as session:
        for status, severity in (
            ("firing", "critical"),
            ("resolved", "warning"),
            ("acknowledged", "warning"),
        ):
            session.add(
                IncidentRow(
                    fingerprint=status,
                    alertname="DriftdModelDrift",
                    status=status,
                    severity=severity,
                    model="m",
                    version="v1",
                    segment="",
                    feature="",
                    labels={},
                    annotations={"summary": "drift share above 0.3"},
                    starts_at=datetime.fromtimestamp(T0, UTC),
                    ends_at=None,
                    updated_at=datetime.fromtimestamp(T0, UTC),
                )
            )
        session.commit()
    found = find_problems(store, SETTINGS, now=now_after(0))
    assert [(f.what, f.severity, f.detail) for f in found] == [
        ("alert", "critical", "firing: drift share above 0.3"),
        ("alert", "warning", "acknowledged: drift share above 0.3"),
    ]
    assert found[0].link.startswith("?incident=")


def test_the_app_reads_the_store_only_through_the_read_layer() -> None:
    from pathlib import Path

    app = Path(__file__).resolve().parents[2] / "dashboards" / "app"
    for path in app.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from sqlalchemy import" not in text and not re.search(r"\bselect\(", text), path
