"""End to end on the real broker: predictions, then labels delayed and shuffled on
their own topic, through the daemon's consumer loop into its window reports.

Realised metrics per window must equal an offline computation on the same joined
data, and the CBPE estimate made at window close (before any label) must be within
its own 95 % interval (and 0.05) of the realised accuracy for a calibrated model.
"""

from __future__ import annotations

import time

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score

from monitor.baseline import build_baseline
from monitor.config import (
    HttpSettings,
    KafkaSettings,
    LabelSettings,
    ModelSettings,
    Settings,
    WindowSettings,
)
from monitor.results import WindowKey

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 60
T0 = 1_700_000_040.0  # aligned to the 60 s grid
PER_WINDOW = 1000
N_WINDOWS = 3


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


def test_daemon_joins_delayed_shuffled_labels(kafka_bootstrap, topic_prefix, tmp_path):
    from kafka import KafkaProducer

    from monitor.daemon import Daemon

    rng = np.random.default_rng(42)
    # A calibrated model: label ~ Bernoulli(score); the baseline carries its CBPE map.
    ref_x = rng.normal(size=20_000)
    ref_score = 1 / (1 + np.exp(-1.5 * ref_x))
    frame = pd.DataFrame({
        "x": ref_x, "y": (rng.random(20_000) < ref_score).astype(int),
        "pred": (ref_score >= 0.5).astype(int), "score": ref_score,
    })
    baseline = build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="binary")
    path = baseline.save(tmp_path / "m-v1.json")

    n = PER_WINDOW * N_WINDOWS
    x = rng.normal(0.4, 1.0, n)  # covariate shift: CBPE should follow it
    score = 1 / (1 + np.exp(-1.5 * x))
    label = (rng.random(n) < score).astype(int)
    times = T0 + np.repeat(np.arange(N_WINDOWS) * WINDOW, PER_WINDOW) + rng.uniform(0, WINDOW - 1, n)
    ids = [f"{topic_prefix}-{i}" for i in range(n)]
    predictions = [
        {"model": "m", "model_version": "v1", "prediction_id": ids[i], "timestamp": float(times[i]),
         "features": {"x": float(x[i])}, "prediction": int(score[i] >= 0.5),
         "scores": {"1": float(score[i]), "0": float(1 - score[i])}}
        for i in range(n)
    ]
    # One later event, sent once the others are in, moves the watermark past the three
    # windows so that they close (sent earlier it could overtake them across partitions).
    tick = ({"model": "m", "model_version": "v1", "prediction_id": f"{topic_prefix}-tick",
                        "timestamp": T0 + 20 * WINDOW, "features": {"x": 0.0}, "prediction": 0,
                        "scores": {"1": 0.4, "0": 0.6}})

    def label_event(i: int) -> bytes:
        return orjson.dumps({"prediction_id": ids[i], "label": int(label[i]), "model": "m",
                             "timestamp": float(times[i] + 900 + rng.uniform(0, 600))})

    settings = Settings(
        kafka=KafkaSettings(
            bootstrap_servers=kafka_bootstrap,
            predictions_topic=f"{topic_prefix}.predictions",
            labels_topic=f"{topic_prefix}.labels",
            dead_letter_topic=f"{topic_prefix}.dead",
            group_id=topic_prefix,
            max_poll_interval_ms=3000,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            poll_timeout_ms=100,
        ),
        windows=WindowSettings(size_seconds=WINDOW, allowed_lateness_seconds=300, min_events=10),
        models=[ModelSettings(name="m", baseline=path)],
        labels=LabelSettings(pending_ttl_seconds=86_400),
        http=HttpSettings(port=0),
        baseline_dir=tmp_path,
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for event in predictions:
        producer.send(settings.kafka.predictions_topic, orjson.dumps(event))
    # The labels topic exists from the start (one label may even join before its window closes).
    producer.send(settings.kafka.labels_topic, label_event(0))
    producer.flush()

    daemon = Daemon(settings, with_store=False).start()
    try:
        registry = daemon.registry

        def closed() -> float:
            return registry.get_sample_value("driftd_windows_closed_total", {"model": "m"}) or 0.0

        def events() -> float:
            return registry.get_sample_value("driftd_events_total", {"model": "m", "version": "v1"}) or 0.0

        _wait(lambda: events() >= n, 90, lambda: f"the predictions to be consumed ({events()}, late {registry.get_sample_value('driftd_late_events_total', {'model': 'm'})})")
        producer.send(settings.kafka.predictions_topic, orjson.dumps(tick))
        producer.flush()
        _wait(lambda: closed() >= N_WINDOWS, 90, "the three windows to close")
        key = WindowKey("m", "v1", "")
        starts = [T0 + k * WINDOW for k in range(N_WINDOWS)]
        estimates = {s: dict(daemon.pipeline.recent[(key, s)].estimated_performance) for s in starts}
        assert all(e.get("accuracy") for e in estimates.values()), estimates

        # The remaining labels, shuffled, arrive later.
        for i in rng.permutation(np.arange(1, n)).tolist():
            producer.send(settings.kafka.labels_topic, label_event(i))
        producer.flush()
        producer.close()

        def joined() -> float:
            return registry.get_sample_value("driftd_labels_total", {"outcome": "joined"}) or 0.0

        def diagnostics() -> str:
            samples = [
                f"{m.name}{sample.labels}={sample.value}"
                for m in registry.collect() if m.name.startswith(("driftd_labels", "driftd_invalid", "driftd_label_join"))
                for sample in m.samples
            ]
            return f"{n} labels to join ({'; '.join(samples)}; pending {daemon.truth.pending_count})"

        _wait(lambda: joined() >= n, 90, diagnostics)
        window_of = np.floor((times - T0) / WINDOW).astype(int)
        for k, start in enumerate(starts):
            report = daemon.pipeline.recent[(key, start)]
            rows = window_of == k
            y, s = label[rows], score[rows]
            p = (s >= 0.5).astype(int)
            assert report.n_labels == report.n_events == rows.sum()
            assert report.label_coverage == 1.0
            assert report.performance["accuracy"].value == pytest.approx(accuracy_score(y, p), abs=1e-12)
            assert report.performance["f1"].value == pytest.approx(f1_score(y, p), abs=1e-12)
            assert report.performance["roc_auc"].value == pytest.approx(roc_auc_score(y, s), abs=2e-3)
            assert report.calibration["brier_score"] == pytest.approx(brier_score_loss(y, s), rel=1e-9)
            assert report.baseline_performance["accuracy"] == pytest.approx(baseline.performance["accuracy"])
            estimate, realised = estimates[start]["accuracy"], report.performance["accuracy"].value
            assert abs(estimate.value - realised) < 0.05
            assert estimate.lower <= realised <= estimate.upper
            assert abs(estimates[start]["roc_auc"].value - report.performance["roc_auc"].value) < 0.05
        text = registry.get_sample_value(
            "driftd_label_coverage_ratio", {"model": "m", "version": "v1", "segment": ""})
        assert text is not None
    finally:
        daemon.stop()
