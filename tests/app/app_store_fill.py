"""A small store with known values for the app's tests (SQLite or PostgreSQL).

Model ``churn`` v2 has 24 five-minute windows from :data:`T0`; feature ``income``
drifts (PSI 0.45 against threshold 0.2) in windows 12–17 and incident 1 covers
them. Model ``fraud`` v1 has two segments and no drift; a resolved incident and a
pipeline alert without a model complete the picture.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.store import open_store
from monitor.store.schema import (
    BaselineRow,
    ExplanationRow,
    FeatureResultRow,
    IncidentRow,
    WindowResultRow,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
DRIFT_WINDOWS = range(12, 18)
N_WINDOWS = 24
INCIDENT_START = T0 + 12 * STEP + timedelta(minutes=5)
INCIDENT_END = T0 + 18 * STEP


def _reliability(shift: float) -> dict:
    points = [[p, min(1.0, max(0.0, p + shift)), 50] for p in (0.1, 0.3, 0.5, 0.7, 0.9)]
    base = [[p, p, 500] for p in (0.1, 0.3, 0.5, 0.7, 0.9)]
    return {"window": points, "baseline": base}


PROFILE = {
    "format_version": 1,
    "model": "churn",
    "version": "v2",
    "features": {
        "age": {"kind": "numeric", "counts": [250, 250, 250, 250], "edges": [30.0, 40.0, 50.0],
                "categories": []},
        "income": {"kind": "numeric", "counts": [100, 300, 400, 200],
                   "edges": [20000.0, 40000.0, 60000.0], "categories": []},
        "plan": {"kind": "categorical", "counts": [600, 300, 100, 0], "edges": [],
                 "categories": ["basic", "pro"]},
    },
    "prediction": {"kind": "numeric", "counts": [500, 500], "edges": [0.5], "categories": []},
    "label": {"kind": "categorical", "counts": [700, 300, 0, 0], "edges": [],
              "categories": ["0", "1"]},
    "importances": {"income": 0.5, "age": 0.3, "plan": 0.2},
    "performance": {"roc_auc": 0.82},
}


def churn_auc(index: int) -> float:
    return 0.70 if index in DRIFT_WINDOWS else 0.80 + 0.001 * index


def income_psi(index: int) -> float:
    return 0.45 if index in DRIFT_WINDOWS else 0.02 + 0.001 * index


def _window(model: str, version: str, segment: str, index: int, drifted: bool) -> WindowResultRow:
    start = T0 + index * STEP
    return WindowResultRow(
        model=model, version=version, segment=segment, window_start=start,
        window_end=start + STEP, closed_at=start + STEP, updated_at=start + STEP,
        n_events=1000 + index, n_labels=500, drift_share=(1 / 3 if drifted else 0.0),
        drift_score=(0.45 if drifted else 0.03), model_drifted=drifted,
        performance={"roc_auc": [churn_auc(index), churn_auc(index) - 0.03,
                                 churn_auc(index) + 0.03]},
        baseline_performance={"roc_auc": 0.82},
        estimated_performance={"roc_auc": [0.79, 0.75, 0.83]},
        calibration={"ece": 0.12 if drifted else 0.02, "brier": 0.2,
                     "reliability_curve": _reliability(0.15 if drifted else 0.0)},
        baseline_calibration={"ece": 0.02, "brier": 0.18},
        attribution={"ndcg": 0.7 if drifted else 0.98, "drifted": drifted, "threshold": 0.9,
                     "n_explanations": 40,
                     "mean_abs_shap": {"income": 0.05 if drifted else 0.5, "age": 0.3,
                                       "plan": 0.2},
                     "relative_change": {"income": -0.9 if drifted else 0.0, "age": 0.0,
                                         "plan": 0.0}},
    )


def _features(window: WindowResultRow, index: int, model: str) -> list[FeatureResultRow]:
    drifted = index in DRIFT_WINDOWS
    rows = [
        ("age", "numeric", "psi", 0.01, None, 0.2, False, [250, 250, 250, 250]),
        ("income", "numeric", "psi", income_psi(index), None, 0.2, drifted,
         [700, 200, 80, 20] if drifted else [100, 300, 400, 200]),
        ("plan", "categorical", "chisquare", 0.03, 0.47, 0.1, False, [600, 300, 100, 0]),
        ("__prediction__", "numeric", "psi", 0.3 if drifted else 0.01, None, 0.2, drifted,
         [800, 200] if drifted else [500, 500]),
        ("__label__", "categorical", "chisquare", 0.02, 0.48, 0.1, False, [700, 300, 0, 0]),
    ]
    return [
        FeatureResultRow(
            window=window, model=model, window_start=window.window_start, feature=f, kind=k,
            method=m, score=s, p_value=p, threshold=t, drifted=d, missing_ratio=0.01,
            unseen_ratio=0.0 if k == "categorical" else None, counts=c,
        )
        for f, k, m, s, p, t, d, c in rows
    ]


def fill_store(url: str) -> dict[str, int]:
    """Create the schema and write the known rows; returns the incident ids."""
    store = open_store(url)
    with store.session() as session:
        session.add(BaselineRow(model="churn", version="v2", created_at=T0 - timedelta(days=1),
                                sha256="0" * 64, profile=PROFILE))
        for index in range(N_WINDOWS):
            window = _window("churn", "v2", "", index, index in DRIFT_WINDOWS)
            session.add(window)
            session.add_all(_features(window, index, "churn"))
        for segment in ("", "region=eu"):
            for index in range(6):
                window = _window("fraud", "v1", segment, index, False)
                window.performance = {"accuracy": [0.9, 0.88, 0.92]}
                window.attribution = {}
                session.add(window)
                session.add_all(_features(window, 0, "fraud"))
        for n, index in enumerate(DRIFT_WINDOWS):
            start = T0 + index * STEP
            session.add(ExplanationRow(
                prediction_id=f"pred-{n:04d}", model="churn", version="v2", segment="",
                event_time=start + timedelta(seconds=30), window_start=start,
                features={"income": 15000.0 + n, "age": 41, "plan": "basic"},
                prediction=0.8, base_value=0.3,
                shap_values={"income": 0.35, "age": 0.1, "plan": 0.05},
                explainer="tree", duration_ms=2.5, reason="drifted_window", created_at=start,
            ))
        churn = IncidentRow(
            fingerprint="a" * 16, alertname="DriftdFeatureDrift", status="firing",
            severity="warning", model="churn", version="v2", segment="", feature="income",
            labels={"alertname": "DriftdFeatureDrift", "model": "churn", "feature": "income"},
            annotations={"summary": "Feature income of churn v2 drifted (PSI above 0.2)."},
            starts_at=INCIDENT_START, ends_at=None, updated_at=INCIDENT_START,
        )
        fraud = IncidentRow(
            fingerprint="b" * 16, alertname="DriftdPerformanceDrop", status="resolved",
            severity="critical", model="fraud", version="v1", segment="", feature="",
            labels={}, annotations={"summary": "fraud accuracy dropped"},
            starts_at=T0, ends_at=T0 + 2 * STEP, updated_at=T0 + 2 * STEP,
        )
        pipeline = IncidentRow(
            fingerprint="c" * 16, alertname="DriftdConsumerLagHigh", status="firing",
            severity="critical", model="", version="", segment="", feature="", labels={},
            annotations={"summary": "consumer lag above 10000"},
            starts_at=T0 + 20 * STEP, ends_at=None, updated_at=T0 + 20 * STEP,
        )
        session.add_all([churn, fraud, pipeline])
        session.commit()
        ids = {"churn": churn.id, "fraud": fraud.id, "pipeline": pipeline.id}
    store.engine.dispose()
    return ids
