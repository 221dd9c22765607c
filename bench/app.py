"""Incident page load time on a store the size of a real deployment.

Fills a SQLite store with 30 days of 5-minute windows for 10 models x 50 features
(86,400 windows, 4.32M feature rows, 2 explanations per window, one incident per
model per day), then times the incident page opened by an alert link (AppTest run,
cold cache: every query hits the database) and the overview and model pages. The
ratio column compares each page with the same page on a one-day, one-model store
built in the same process, so it shows how load time grows with the store.

    python bench/app.py                       # full size (about 2-4 min to fill)
    python bench/app.py --days 3 --models 2   # quicker, smaller
    python bench/app.py --db /tmp/big.db      # keep and reuse the filled store

Target: incident page < 2 s on the full store.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# `python bench/app.py` puts bench/ first on the path, where bench/detectors.py would
# shadow the detectors package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
from sqlalchemy import insert, text

from monitor.store import open_store
from monitor.store.schema import ExplanationRow, IncidentRow, WindowResultRow

STEP = timedelta(minutes=5)
START = datetime(2026, 10, 1, tzinfo=UTC)
CHUNK = 50_000
COUNTS = "[100,100,100,100,100,100,100,100,100,100]"
# 4.3M feature rows go straight to sqlite3 (SQLAlchemy's per-row type processing would
# take minutes); times in the format SQLAlchemy's SQLite DateTime stores (UTC, naive).
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
FEATURE_INSERT = (
    "INSERT INTO feature_results (id, window_id, model, window_start, feature, kind, method, "
    "score, p_value, threshold, drifted, missing_ratio, unseen_ratio, counts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def fill(url: str, days: int, models: int, features: int, seed: int = 7) -> dict[str, int]:
    """Write the synthetic store through the store's engine (schema from its migrations)."""
    store = open_store(url)
    rng = np.random.default_rng(seed)
    per_model = days * 288
    names = [f"f{i:02d}" for i in range(features)]
    window_id = feature_id = 0
    started = time.perf_counter()
    feature_rows: list[tuple] = []
    with store.engine.begin() as conn:
        for m in range(models):
            model = f"model{m}"
            windows = []
            first_id = window_id + 1
            for w in range(per_model):
                window_id += 1
                start = START + w * STEP
                drifted = (w // 288) % 7 == 3 and w % 288 in range(100, 112)
                windows.append({
                    "id": window_id, "model": model, "version": "v1", "segment": "",
                    "window_start": start, "window_end": start + STEP, "closed_at": start + STEP,
                    "updated_at": start + STEP, "n_events": 1000, "n_labels": 400,
                    "drift_share": 0.1 if drifted else 0.0, "drift_score": 0.3,
                    "model_drifted": drifted, "n_drifted_features": 5 if drifted else 0,
                    "performance": {"roc_auc": [0.8, 0.77, 0.83]},
                    "baseline_performance": {"roc_auc": 0.82},
                    "estimated_performance": {"roc_auc": [0.8, 0.76, 0.84]},
                    "calibration": {"ece": 0.02, "brier": 0.15},
                    "baseline_calibration": {"ece": 0.02, "brier": 0.15},
                    "attribution": {},
                })
            # Windows first: feature rows reference them (foreign keys are on).
            conn.execute(insert(WindowResultRow), windows)
            scores = rng.random((per_model, features)) * 0.1
            for offset, window in enumerate(windows):
                if window["model_drifted"]:
                    scores[offset, :5] += 0.4
                stamp = window["window_start"].strftime(SQLITE_TIME)
                for f, name in enumerate(names):
                    feature_id += 1
                    score = float(scores[offset, f])
                    feature_rows.append((
                        feature_id, first_id + offset, model, stamp, name, "numeric", "psi",
                        score, None, 0.2, score > 0.2, 0.0, None, COUNTS,
                    ))
                if len(feature_rows) >= CHUNK:
                    conn.exec_driver_sql(FEATURE_INSERT, feature_rows)
                    feature_rows = []
            conn.execute(insert(ExplanationRow), [
                {"prediction_id": f"{model}-{w}-{k}", "model": model, "version": "v1",
                 "segment": "", "event_time": START + w * STEP, "window_start": START + w * STEP,
                 "features": {n: 1.0 for n in names[:10]}, "prediction": 0.5, "base_value": 0.3,
                 "shap_values": {n: 0.01 for n in names[:10]}, "explainer": "tree",
                 "duration_ms": 1.0, "reason": "base_rate", "created_at": START + w * STEP}
                for w in range(per_model) for k in range(2)
            ])
            conn.execute(insert(IncidentRow), [
                {"fingerprint": f"{m:04d}{d:04d}", "alertname": "DriftdFeatureDrift",
                 "status": "resolved", "severity": "warning", "model": model, "version": "v1",
                 "segment": "", "feature": "f00", "labels": {}, "annotations": {},
                 "starts_at": START + timedelta(days=d) + 100 * STEP,
                 "ends_at": START + timedelta(days=d) + 112 * STEP,
                 "updated_at": START + timedelta(days=d) + 112 * STEP}
                for d in range(days)
            ])
            print(f"  {model}: {window_id:,} windows, {feature_id:,} feature rows "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        if feature_rows:
            conn.exec_driver_sql(FEATURE_INSERT, feature_rows)
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        incident = conn.execute(
            text("select id from incidents where model = :m order by starts_at desc limit 1"),
            {"m": f"model{models - 1}"},
        ).scalar_one()
    store.engine.dispose()
    return {"incident": int(incident), "windows": window_id, "features": feature_id}


def time_pages(url: str, incident: int, model: str, repeat: int) -> dict[str, float]:
    """Median AppTest run time per page with a cold cache (every query reaches the store)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboards.app import APP_SCRIPT, STORE_URL_ENV

    os.environ[STORE_URL_ENV] = url
    pages = {
        "incident (?incident=ID)": {"incident": str(incident)},
        "overview": {},
        "model page (24 h)": {"page": "model", "model": model},
        "model page (30 days)": {"page": "model", "model": model, "from": "2000-01-01T00:00:00Z",
                                 "to": "2100-01-01T00:00:00Z"},
    }
    timings = {}
    for name, params in pages.items():
        at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120)
        at.query_params.update(params)
        # A new AppTest scans every installed package for Streamlit components (about
        # 1.5 s here); a browser session pays nothing like it, so it is left out.
        at.run()
        runs = []
        for _ in range(repeat):
            st.cache_data.clear()
            began = time.perf_counter()
            at.run()
            runs.append(time.perf_counter() - began)
            if at.exception or at.error:
                raise SystemExit(f"{name} failed: {[e.value for e in [*at.exception, *at.error]]}")
        timings[name] = statistics.median(runs)
    return timings


def explain_plans(url: str, model: str) -> None:
    """Which indexes the incident page's two large reads use."""
    store = open_store(url, create=False)
    start = START + timedelta(days=1)
    queries = {
        "windows of a model in a range": (
            "select id from window_results where model = :m and version = 'v1' "
            "and window_start >= :a and window_start < :b"),
        "feature rows of those windows": (
            "select f.score from feature_results f join window_results w on f.window_id = w.id "
            "where w.model = :m and w.version = 'v1' and w.segment = '' "
            "and w.window_start >= :a and w.window_start < :b"),
    }
    params = {"m": model, "a": start.strftime("%Y-%m-%d %H:%M:%S.%f"),
              "b": (start + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S.%f")}
    with store.engine.connect() as conn:
        for name, sql in queries.items():
            plan = conn.execute(text("explain query plan " + sql), params).all()
            print(f"  {name}: " + " | ".join(row[-1] for row in plan))
    store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, default=Path("/tmp/driftd-bench-app.db"))
    args = parser.parse_args()

    small_db = args.db.with_name(args.db.stem + "-small.db")
    for path in (small_db,):
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    print("baseline store: 1 day x 1 model")
    small = fill(f"sqlite:///{small_db}", 1, 1, args.features)
    url = f"sqlite:///{args.db}"
    if args.db.exists():
        print(f"reusing {args.db}")
        store = open_store(url, create=False)
        with store.engine.connect() as conn:
            big = {"incident": conn.execute(text(
                "select id from incidents where model = :m order by starts_at desc limit 1"),
                {"m": f"model{args.models - 1}"}).scalar_one(),
                "windows": conn.execute(text("select count(*) from window_results")).scalar_one(),
                "features": conn.execute(text("select count(*) from feature_results")).scalar_one()}
        store.engine.dispose()
    else:
        print(f"full store: {args.days} days x {args.models} models x {args.features} features")
        began = time.perf_counter()
        big = fill(url, args.days, args.models, args.features)
        print(f"  filled in {time.perf_counter() - began:.0f} s")
    print(f"  {big['windows']:,} windows, {big['features']:,} feature rows, "
          f"{args.db.stat().st_size / 1e9:.2f} GB")
    explain_plans(url, f"model{args.models - 1}")

    # The first run imports plotly, pandas and the app; keep that out of the timings.
    time_pages(f"sqlite:///{small_db}", small["incident"], "model0", 1)
    base = time_pages(f"sqlite:///{small_db}", small["incident"], "model0", args.repeat)
    full = time_pages(url, big["incident"], f"model{args.models - 1}", args.repeat)
    print(f"\n{'page (cold cache, median of ' + str(args.repeat) + ')':<42}"
          f"{'1-day store':>12}{'full store':>12}{'ratio':>8}")
    for name in full:
        print(f"{name:<42}{base[name]:>11.2f}s{full[name]:>11.2f}s{full[name] / base[name]:>8.2f}")
    verdict = "meets" if full["incident (?incident=ID)"] < 2.0 else "MISSES"
    print(f"\nincident page {verdict} the 2 s target on the full store")
    for suffix in ("", "-wal", "-shm"):
        Path(str(small_db) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
