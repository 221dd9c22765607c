"""Predictions later found wrong are explained when their labels arrive (in-process, real workers).

The pipeline joins labels to predictions (``monitor.truth.GroundTruth``), takes the
predictions the labels showed wrong and hands them to ``ExplainService.offer_wrong``,
which explains the ones still in its recent-rows cache with reason ``wrong``. The
sampling rates are 0 here, so every stored explanation is one of those.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from tests.explainers.explain_models import FEATURES, RULE_1, inputs, labels, train_xgboost

from explainers import global_importances, load_model
from explainers.encoding import FeatureEncoder
from explainers.service import ExplainService
from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.store import open_store
from monitor.truth import GroundTruth

pytest.importorskip("shap")
xgboost = pytest.importorskip("xgboost")

T0 = 1_767_225_600.0  # a multiple of the window size
WRONG_ABS_ERROR = 1.0


def _train_regressor(path: Path) -> Path:
    frame = inputs(3000, 4)
    target = frame["x1"] * 2.0 + frame["x2"] + np.random.default_rng(5).normal(0, 0.3, len(frame))
    model = xgboost.XGBRegressor(n_estimators=40, max_depth=3, random_state=0, n_jobs=1)
    model.fit(frame, target)
    model.get_booster().save_model(str(path))
    return path


@pytest.fixture(scope="module")
def env(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    classifier = train_xgboost(model_dir / "a", RULE_1, seed=0)
    regressor = _train_regressor(model_dir / "r.json")
    reference = inputs(2000, 1)
    settings = load_settings(
        None,
        models=[
            {"name": "a", "model_file": str(classifier)},
            {"name": "r", "task": "regression", "model_file": str(regressor), "wrong_abs_error": WRONG_ABS_ERROR},
        ],
        windows={"size_seconds": 300, "allowed_lateness_seconds": 60, "min_events": 10},
        explain={"enabled": True, "workers": 1, "queue_size": 5000, "base_rate": 0.0, "near_threshold_band": 0.0,
                 "drifted_window_rate": 0.0, "max_per_second": 1e6},
    )
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('wrong') / 'driftd.db'}")
    registry, metrics, collector = create_metrics(100)
    baselines = BaselineRegistry(settings)
    baselines.add(build_baseline(reference, "a", "v1", importances=global_importances(classifier, reference)))
    baselines.add(build_baseline(reference, "r", "v1", task="regression"))
    models = {m.name: m for m in settings.models}
    truth = GroundTruth(settings.labels, models, baselines.get, metrics, 300.0)
    service = ExplainService(settings.explain, models, baselines.get, store, metrics)
    assert service.wait_ready(180), "workers did not start"
    pipeline = Pipeline(settings, metrics, collector, baselines, truth=truth, explainer=service)
    yield {"pipeline": pipeline, "service": service, "store": store, "registry": registry,
           "files": {"a": classifier, "r": regressor}}
    service.close()
    store.close()


def _events(model: str, frame, predictions, prefix: str) -> list[bytes]:
    return [
        orjson.dumps({
            "model": model, "model_version": "v1", "prediction_id": f"{prefix}{i}", "timestamp": T0 + i * 0.01,
            "features": {name: float(frame[name].iloc[i]) for name in FEATURES}, "prediction": predictions[i],
        })
        for i in range(len(frame))
    ]


def _label(prediction_id: str, label: object, model: str) -> bytes:
    return orjson.dumps({"prediction_id": prediction_id, "label": label, "timestamp": T0 + 100, "model": model})


def _stored(store, model: str) -> dict:
    return {r.prediction_id: r for r in store.explanations_for_window(model, "v1", T0, limit=10_000)}


def test_classifier_predictions_found_wrong_are_explained(env: dict) -> None:
    pipeline, service, store, registry = (env[k] for k in ("pipeline", "service", "store", "registry"))
    frame = inputs(300, 11)
    predicted = [int(p) for p in labels(frame, RULE_1, 12)]
    assert pipeline.process_predictions(_events("a", frame, predicted, "c")) == []
    assert service.flush(60) and _stored(store, "a") == {}  # nothing sampled at rate 0
    # Labels for the first 200: every third one contradicts the prediction.
    wrong = {f"c{i}" for i in range(0, 200, 3)}
    values = [_label(f"c{i}", 1 - predicted[i] if f"c{i}" in wrong else predicted[i], "a") for i in range(200)]
    # One label arrives before its prediction, and is wrong too.
    values.append(_label("late-0", 1 - predicted[0], "a"))
    assert pipeline.process_labels(values) == []
    assert pipeline.process_predictions(_events("a", frame.head(1), predicted[:1], "late-")) == []
    wrong.add("late-0")
    assert service.flush(60)
    stored = _stored(store, "a")
    assert set(stored) == wrong
    assert {r.reason for r in stored.values()} == {"wrong"}
    # The explanation is of the logged inputs: additive to the model's log-odds.
    record = stored["c3"]
    loaded = load_model(env["files"]["a"])
    x = FeatureEncoder(loaded.feature_names).from_frame(frame.iloc[[3]])
    assert record.base_value + sum(record.shap_values.values()) == pytest.approx(loaded.output(x)[0, 0], abs=1e-6)
    assert record.prediction == predicted[3]
    assert registry.get_sample_value("driftd_explain_dropped_total", {"model": "a", "reason": "not_cached"}) is None
    # A second label for the same prediction is a duplicate, not a second explanation.
    assert pipeline.process_labels([_label("c0", 1 - predicted[0], "a")]) == []
    assert service.flush(60) and len(_stored(store, "a")) == len(wrong)


def test_regression_predictions_off_by_more_than_wrong_abs_error_are_explained(env: dict) -> None:
    pipeline, service, store = env["pipeline"], env["service"], env["store"]
    frame = inputs(100, 21)
    predicted = [float(v) for v in 2.0 * frame["x1"] + frame["x2"]]
    assert pipeline.process_predictions(_events("r", frame, predicted, "r")) == []
    errors = np.linspace(0.0, 2.0, 100).tolist()  # |label - prediction|: half within, half beyond the limit
    values = [_label(f"r{i}", predicted[i] + (errors[i] if i % 2 else -errors[i]), "r") for i in range(100)]
    assert pipeline.process_labels(values) == []
    assert service.flush(60)
    stored = _stored(store, "r")
    assert set(stored) == {f"r{i}" for i in range(100) if errors[i] > WRONG_ABS_ERROR}
    assert {r.reason for r in stored.values()} == {"wrong"}
    assert stored["r99"].explainer.startswith("tree/") and stored["r99"].prediction == pytest.approx(predicted[99])
