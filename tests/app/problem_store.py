"""A store where one model drifts and another loses accuracy, written by the real pipeline.

Events from :mod:`monitor.simulate` go through the daemon's own path without Kafka:
decode, event-time windows, evaluation, the label join (performance and
calibration per window) and the store writes. ``credit`` v1 shifts ``num_0`` and
``num_1`` by one standard deviation from :data:`DRIFT_FROM` windows on; the labels
of ``churn`` v3 in segment ``region=eu`` flip from :data:`CONCEPT_FROM` windows on,
so its realised accuracy falls far below the baseline's. The newest windows end
just before ``now`` (wall clock), so nothing is stale.
"""

from __future__ import annotations

import time

from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.simulate import Scenario, encode, label_events, prediction_events, training_frame
from monitor.store import open_store
from monitor.truth import GroundTruth

WINDOW = 300
N_WINDOWS = 8
DRIFT_FROM = 4
CONCEPT_FROM = 4
RATE = 2.0  # events per second of event time and model: 600 per window, 300 per segment


def scenarios(start: float) -> list[Scenario]:
    return [
        Scenario(
            model="credit",
            version="v1",
            drift_features=("num_0", "num_1"),
            drift_start=start + DRIFT_FROM * WINDOW,
            shift=1.0,
            seed=11,
        ),
        Scenario(
            model="churn",
            version="v3",
            drift_features=(),
            concept_start=start + CONCEPT_FROM * WINDOW,
            concept_segment="eu",
            seed=12,
        ),
    ]


def run_pipeline(sink, now: float | None = None, importances: dict[str, float] | None = None):
    """Push the two models' windows through a real pipeline; returns (pipeline, registry, start).

    ``sink`` receives every report (``None``: none); ``importances`` become the
    credit baseline's SHAP importances.
    """
    now = time.time() if now is None else now
    start = (now // WINDOW - N_WINDOWS - 1) * WINDOW
    models = scenarios(start)
    settings = load_settings(
        None,
        models=[{"name": m.model} for m in models],
        windows={"size_seconds": WINDOW, "allowed_lateness_seconds": 0, "min_events": 100},
    )
    registry, metrics, collector = create_metrics(100)
    baselines = BaselineRegistry(settings)
    for scenario in models:
        frame = training_frame(scenario, n=5_000)
        baseline = build_baseline(
            frame,
            scenario.model,
            scenario.version,
            target="target",
            prediction="prediction",
            score="score",
            source="training data",
            importances=importances if scenario.model == "credit" else None,
        )
        baselines.add(baseline)
    truth = GroundTruth(
        settings.labels, {m.name: m for m in settings.models}, baselines.get, metrics, float(WINDOW)
    )
    pipeline = Pipeline(
        settings, metrics, collector, baselines, sinks=[sink] if sink else [], truth=truth
    )
    per_window = int(WINDOW * RATE)
    for index in range(N_WINDOWS + 1):
        begin = start + index * WINDOW
        for scenario in models:
            events, labels = prediction_events(scenario, begin, per_window, RATE, seed=100 + index)
            pipeline.process_predictions(list(encode(events)))
            pipeline.process_labels(list(encode(label_events(events, labels, delay=1.0))))
        pipeline.close_due()
    pipeline.close_all()
    pipeline.apply_label_updates()
    return pipeline, registry, start


def fill_problem_store(
    url: str, now: float | None = None, importances: dict[str, float] | None = None
) -> dict[str, float]:
    """Write the windows and baselines; returns the event-time start of the first window and of the drift."""
    store = open_store(url)
    pipeline, _, start = run_pipeline(lambda r: store.write_reports([r]), now, importances)
    for model, version in (("credit", "v1"), ("churn", "v3")):
        baseline = pipeline.baselines.get(model, version)
        store.save_baseline(model, version, baseline.to_dict())
    store.close()
    return {"start": start, "drift": start + DRIFT_FROM * WINDOW}
