"""Round trips of every Store API, on SQLite and on PostgreSQL (see conftest.store_url)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import orjson
import pytest
from sqlalchemy import func, select

from detectors.base import DriftResult
from monitor.results import PREDICTION, MetricValue
from monitor.store import BaselineExists, StoreError, StoreUnavailable, open_store
from monitor.store.schema import FeatureResultRow, WindowResultRow

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def comparable(value):
    """Plain, order-independent, NaN-comparable form of a report (or any nesting of one)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return sorted((str(k), comparable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, np.ndarray)):
        return [comparable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def explanation_row(pid: str, window_start: float, shap: dict[str, float], **extra):
    return {
        "prediction_id": pid,
        "model": "churn",
        "version": "1",
        "event_time": window_start + 10,
        "window_start": window_start,
        "features": {"f000": 1.5, "plan": "gold", "f002": None},
        "prediction": 0.73,
        "base_value": 0.2,
        "shap_values": shap,
        "explainer": "tree",
        "duration_ms": 3.5,
        **extra,
    }


def test_report_round_trip(store, make_report):
    report = make_report(n_features=6, seed=1)
    assert store.write_reports([report]) == 1
    back = store.window_report("churn", "1", "", T0)
    assert comparable(back) == comparable(report)
    assert back.window_start == T0 and back.closed_at == report.closed_at
    assert store.window_report("churn", "1", "", T0 + 300) is None


def test_rewrite_replaces_window_and_feature_rows(store, make_report):
    first = make_report(n_features=8, seed=2)
    store.write_reports([first])
    store.write_reports([first])  # idempotent
    [record] = store.windows("churn")
    # Labels and fewer verdicts arrive later: the window is rewritten, not duplicated.
    later = make_report(n_features=3, seed=3)
    later.n_labels = 99
    later.performance = {"accuracy": MetricValue(0.5, 0.4, 0.6)}
    later.attribution = None
    store.write_reports([later])
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(WindowResultRow)) == 1
        n_rows = session.scalar(select(func.count()).select_from(FeatureResultRow))
    assert n_rows == 3 + 2  # features + prediction + label of the newest report only
    [rewritten] = store.windows("churn")
    assert rewritten.n_labels == 99 and rewritten.attribution is None
    assert rewritten.performance == {"accuracy": MetricValue(0.5, 0.4, 0.6)}
    assert rewritten.updated_at >= record.updated_at
    assert comparable(store.window_report("churn", "1", "", T0)) == comparable(later)


def test_many_reports_in_one_call(store, make_report):
    reports = [
        make_report(model=f"m{m}", window_start=T0 + 300 * w, n_features=50, seed=w)
        for m in range(3)
        for w in range(40)
    ]
    # A later duplicate of a key in the same call wins.
    duplicate = make_report(model="m0", window_start=T0, n_features=50, seed=999)
    duplicate.n_events = 123
    assert store.write_reports([*reports, duplicate]) == 120
    with store.session() as session:
        n_rows = session.scalar(select(func.count()).select_from(FeatureResultRow))
    assert n_rows == 120 * 52
    assert store.windows("m0", start=T0, end=T0 + 1)[0].n_events == 123
    rows = store.feature_results("m1", T0, T0 + 300 * 40)
    assert len(rows) == 40 * 52
    expected = sum(r.drifted for rep in reports if rep.key.model == "m1" for r in rep.features)
    assert sum(w.n_drifted_features for w in store.windows("m1")) == expected


def test_window_queries_filter_and_order(store, make_report):
    reports = [
        make_report(version=v, segment=s, window_start=T0 + 300 * w, seed=w)
        for v in ("1", "2")
        for s in ("", "region=eu")
        for w in range(4)
    ]
    store.write_reports(reports[::-1])
    everything = store.windows("churn")
    assert len(everything) == 16
    starts = [w.window_start for w in everything]
    assert starts == sorted(starts)
    assert all(w.window_start.tzinfo is not None for w in everything)
    picked = store.windows("churn", version="2", segment="region=eu", start=T0 + 300, end=T0 + 900)
    assert [(w.version, w.segment, w.window_start.timestamp()) for w in picked] == [
        ("2", "region=eu", T0 + 300), ("2", "region=eu", T0 + 600)
    ]
    # datetimes and epoch seconds mean the same; other time zones are converted.
    plus_two = timezone(timedelta(hours=2))
    same = store.windows(
        "churn", version="2", segment="region=eu",
        start=datetime.fromtimestamp(T0 + 300, plus_two), end=T0 + 900,
    )
    assert same == picked
    assert store.windows("nobody") == []

    rows = store.feature_results(
        "churn", T0, T0 + 600, features=["f001", PREDICTION], version="1", segment=""
    )
    assert [(r.window_start.timestamp(), r.feature) for r in rows] == [
        (T0, "__prediction__"), (T0, "f001"), (T0 + 300, "__prediction__"), (T0 + 300, "f001")
    ]
    assert math.isnan(rows[1].score)  # NaN scores survive (stored as NULL)
    assert rows[0].counts == [5, 7] and rows[0].kind == "categorical"


def test_models_summary(store, make_report):
    store.write_reports([
        make_report(model="a", version="1", window_start=T0),
        make_report(model="a", version="1", window_start=T0 + 300),
        make_report(model="a", version="2", window_start=T0 + 600, size=60),
        make_report(model="b", version="7", window_start=T0 - 300),
    ])
    summary = [(m.model, m.version, m.n_windows, m.last_window_start.timestamp(),
                m.last_window_end.timestamp()) for m in store.models()]
    assert summary == [
        ("a", "1", 2, T0 + 300, T0 + 600),
        ("a", "2", 1, T0 + 600, T0 + 660),
        ("b", "7", 1, T0 - 300, T0),
    ]


def test_baselines(store):
    profile = {"model": "churn", "features": {"age": {"edges": [1.5, float("nan"), 3]}},
               "rows": np.int64(10)}
    digest = store.save_baseline("churn", "1", profile)
    canonical = orjson.dumps(profile, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    assert digest == hashlib.sha256(canonical).hexdigest()
    assert store.save_baseline("churn", "1", dict(profile)) == digest  # identical: no-op
    with pytest.raises(BaselineExists, match="'churn' version '1'"):
        store.save_baseline("churn", "1", {**profile, "rows": 11})
    assert store.load_baseline("churn", "1") == orjson.loads(canonical)
    assert store.load_baseline("churn", "2") is None
    store.save_baseline("aaa", "3", {"x": 1})
    listed = [(b.model, b.version, b.sha256) for b in store.list_baselines()]
    assert listed == [("aaa", "3", hashlib.sha256(b'{"x":1}').hexdigest()), ("churn", "1", digest)]
    with pytest.raises(StoreError, match="model must be"):
        store.save_baseline("", "1", {})


def test_explanations_round_trip_and_queries(store):
    rng = np.random.default_rng(7)
    names = ["f000", "f001", "f002", "plan"]
    shap = rng.normal(0, [1.0, 0.1, 0.5, 2.0], size=(30, 4))
    rows = [
        explanation_row(f"p{i}", T0, dict(zip(names, shap[i], strict=True)), event_time=T0 + 30 - i)
        for i in range(30)
    ]
    rows.append(explanation_row("other", T0 + 300, {"f000": 100.0}))
    assert store.add_explanations(rows) == 31
    # Retrying the same rows (same created_at) stores nothing twice.
    later = datetime.now(UTC).timestamp() + 3600  # newer than the rows written just now
    created = [dict(r, created_at=later + i) for i, r in enumerate(rows[:3])]
    assert store.add_explanations(created) == 3
    assert store.add_explanations(created) == 0

    one = store.explanation("p2")
    assert one.created_at == datetime.fromtimestamp(later + 2, UTC)  # the newest of p2
    one = store.explanation("p5")
    assert one.features == {"f000": 1.5, "plan": "gold", "f002": None}
    assert one.shap_values == pytest.approx(dict(zip(names, shap[5], strict=True)), rel=1e-12)
    assert (one.event_time, one.window_start) == (
        datetime.fromtimestamp(T0 + 25, UTC), datetime.fromtimestamp(T0, UTC))
    assert (one.explainer, one.reason, one.segment, one.background_hash) == (
        "tree", "base_rate", "", "")
    assert store.explanation("missing") is None

    window = store.explanations_for_window("churn", "1", T0, limit=5)
    assert [e.prediction_id for e in window] == ["p29", "p28", "p27", "p26", "p25"]
    assert len(store.explanations_for_window("churn", "1", T0)) == 33

    # Reference: mean |SHAP| per feature over the window's 33 stored explanations.
    stored = np.vstack([shap, shap[:3]])
    reference = np.abs(stored).mean(axis=0)
    order = np.argsort(-reference)
    top = store.top_attributions("churn", "1", T0, k=3)
    assert [f for f, _ in top] == [names[i] for i in order[:3]]
    assert [v for _, v in top] == pytest.approx(reference[order[:3]], rel=1e-12)
    assert store.top_attributions("churn", "1", T0 + 600) == []


def test_bad_explanations_write_nothing(store):
    good = explanation_row("ok", T0, {"a": 1.0})
    with pytest.raises(StoreError, match=r"explanation 1: unknown column\(s\) \['shap'\]"):
        store.add_explanations([good, {**good, "shap": {}}])
    with pytest.raises(StoreError, match=r"missing column\(s\) \['base_value'\]"):
        store.add_explanations([{k: v for k, v in good.items() if k != "base_value"}])
    with pytest.raises(StoreError, match="event_time"):
        store.add_explanations([{**good, "event_time": "yesterday"}])
    assert store.explanation("ok") is None


def test_checkpoint_round_trip(store):
    assert store.load_checkpoint("driftd") is None
    state = np.random.default_rng(3).bytes(2_000_000)
    store.save_checkpoint("driftd", {"predictions:0": 10, "labels:3": 7}, state)
    store.save_checkpoint("other", {}, b"")
    assert store.load_checkpoint("driftd") == ({"predictions:0": 10, "labels:3": 7}, state)
    store.save_checkpoint("driftd", {"predictions:0": 11}, b"newer")
    assert store.load_checkpoint("driftd") == ({"predictions:0": 11}, b"newer")
    assert store.load_checkpoint("other") == ({}, b"")


def test_bad_report_is_a_store_error(store, make_report):
    report = make_report()
    report.window_end = float("nan")
    with pytest.raises(StoreError, match="window_end"):
        store.write_reports([make_report(window_start=T0 + 300), report])
    assert store.windows("churn") == []  # one transaction: nothing written


def test_unusable_urls():
    with pytest.raises(StoreError, match="not usable"):
        open_store("not a url")
    with pytest.raises(StoreError):
        open_store("oracle://scott@127.0.0.1/db")


def test_unreachable_postgres_is_unavailable(postgres_url):
    # Port 1 on loopback: connection refused at once.
    url = postgres_url.replace(":5432/", ":1/")
    with pytest.raises(StoreUnavailable, match="migrate"):
        open_store(url)
    lazy = open_store(url, create=False)  # does not touch the database
    with pytest.raises(StoreUnavailable):
        lazy.windows("churn")
    with pytest.raises(StoreUnavailable):
        lazy.save_checkpoint("driftd", {}, b"")


def test_unknown_feature_kind_defaults(store):
    from monitor.results import WindowKey, WindowReport

    report = WindowReport(
        key=WindowKey("m", "1", ""), window_start=T0, window_end=T0 + 300, n_events=10,
        features=[DriftResult("psi", "x", 0.1, None, 0.2, False)],
        prediction=[DriftResult("psi", PREDICTION, 0.1, None, 0.2, False)],
    )
    store.write_reports([report])
    kinds = {r.feature: r.kind for r in store.feature_results("m", T0, T0 + 1)}
    assert kinds == {"x": "unknown", PREDICTION: "prediction"}
    [window] = store.windows("m")
    # closed_at unknown (0.0) -> the write time
    assert abs(window.closed_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_sqlite_writer_waits_for_another_process_lock(tmp_path):
    """A read-then-write call waits for another writer instead of failing "database is locked"."""
    import sqlite3
    import threading

    path = tmp_path / "driftd.db"
    store = open_store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("insert into checkpoints (name, offsets, state, updated_at) "
                  "values ('other', '{}', x'', '2026-01-01 00:00:00')")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        # save_baseline reads, then inserts: with a deferred BEGIN the insert would hit
        # SQLITE_BUSY_SNAPSHOT as soon as the other writer commits.
        assert store.save_baseline("churn", "1", {"x": 1})
    finally:
        release.join()
        other.close()
    assert store.load_checkpoint("other") == ({}, b"")

    # The same for callers with their own ORM code (the alert receiver, the app's notes).
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("delete from checkpoints where name = 'other'")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with store.session(write=True) as session, session.begin():
            assert session.scalar(select(func.count()).select_from(WindowResultRow)) == 0
            session.execute(WindowResultRow.__table__.delete())
    finally:
        release.join()
        other.close()
    assert store.load_checkpoint("other") is None
    store.close()
