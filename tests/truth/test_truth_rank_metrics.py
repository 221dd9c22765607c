"""ROC AUC and sequential alarms on score distributions of real model families.

A gradient-boosted model (LightGBM, trained here on generated data) puts about half
of its scores within 1e-5 of 0 or 1; synthetic scores sit 1e-6 from 0 and 1. Through
the real path (JSON events -> Pipeline -> GroundTruth -> window reports), every
window's ROC AUC must be within its reported binning error of scikit-learn's
``roc_auc_score`` on the same joined events, that error must be small, and the
alarms stored by the daemon's sink must be the detectors' alarms on the same error
stream. On the old 0.001 grid the same windows are off by more than 0.01.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from detectors.performance import BinaryCounts, binary_metrics
from detectors.score_bins import ScoreBins
from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import LabelSettings, ModelSettings, Settings, WindowSettings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.results import WindowKey
from monitor.store import open_store
from monitor.truth import GroundTruth
from monitor.truth.alarms import default_detectors

WINDOW = 300
T0 = 1_700_000_100.0  # aligned to the 300 s grid
PER_WINDOW = 1600
N_WINDOWS = 9
CHANGE_FROM = 6  # the last third: the concept flips in region=eu
MAX_ERROR = 0.005  # the binning error every window must stay below


def _features(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, 6))


def _labels(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    logit = 2.5 * x[:, 0] - 2.0 * x[:, 1] + 1.5 * x[:, 2] * x[:, 3] + x[:, 4]
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.fixture(scope="module")
def gbm():
    """A LightGBM classifier fitted on generated rows (overfitted: saturated scores)."""
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(7)
    x = _features(rng, 6000)
    y = _labels(rng, x)
    booster = lgb.train(
        {"objective": "binary", "learning_rate": 0.3, "num_leaves": 63, "min_data_in_leaf": 3,
         "verbose": -1, "num_threads": 1, "seed": 7, "deterministic": True},
        lgb.Dataset(x, y), num_boost_round=300,
    )
    return booster, x, y


def _frame(x: np.ndarray, y: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    return frame.assign(y=y, pred=(score >= 0.5).astype(int), score=score)


def _pipeline(tmp_path, baseline):
    path = baseline.save(tmp_path / "gbm-v1.json")
    model = ModelSettings(name="gbm", baseline=path, task="binary", positive_class="1")
    settings = Settings(models=[model], windows=WindowSettings(size_seconds=WINDOW, allowed_lateness_seconds=0),
                        labels=LabelSettings())
    registry, metrics, collector = create_metrics(max_keys=100)
    baselines = BaselineRegistry(settings)
    truth = GroundTruth(settings.labels, {"gbm": model}, baselines.get, metrics, float(WINDOW))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    pipeline = Pipeline(settings, metrics, collector, baselines, truth=truth, alarm_sinks=[store.add_alarms])
    return pipeline, truth, store, metrics


def _stream(gbm, seed: int = 11):
    booster = gbm[0]
    rng = np.random.default_rng(seed)
    n = PER_WINDOW * N_WINDOWS
    x = _features(rng, n)
    y = _labels(rng, x)
    score = booster.predict(x)
    window = np.repeat(np.arange(N_WINDOWS), PER_WINDOW)
    times = T0 + window * WINDOW + np.sort(rng.uniform(0, WINDOW - 1, n).reshape(N_WINDOWS, -1), axis=1).ravel()
    region = np.where(rng.random(n) < 0.5, "eu", "us")
    # Concept change: in region=eu, from window CHANGE_FROM on, the label of a third of
    # the events flips (the input->label relationship moved; the inputs did not).
    flip = (region == "eu") & (window >= CHANGE_FROM) & (rng.random(n) < 0.35)
    y = np.where(flip, 1 - y, y)
    return x, y, score, times, window, region


def _events(ids, x, score, times, region) -> list[bytes]:
    return [
        orjson.dumps({
            "model": "gbm", "model_version": "v1", "prediction_id": ids[i], "timestamp": float(times[i]),
            "features": {f"x{j}": float(x[i, j]) for j in range(x.shape[1])},
            "prediction": int(score[i] >= 0.5), "scores": {"1": float(score[i]), "0": float(1 - score[i])},
            "segment": {"region": str(region[i])},
        })
        for i in range(len(ids))
    ]


def _label_events(ids, y, times) -> list[bytes]:
    return [orjson.dumps({"prediction_id": ids[i], "label": int(y[i]), "timestamp": float(times[i]) + 450,
                          "model": "gbm"}) for i in range(len(ids))]


def test_gbm_stream_auc_within_reported_error_and_alarms_stored(gbm, tmp_path):
    booster = gbm[0]
    rng = np.random.default_rng(3)
    # The baseline comes from held-out validation rows, as docs/ground-truth.md asks.
    x_val = _features(rng, 6000)
    y_val, s_val = _labels(rng, x_val), booster.predict(x_val)
    baseline = build_baseline(_frame(x_val, y_val, s_val), "gbm", "v1", target="y", prediction="pred",
                              score="score", task="binary")
    assert baseline.score_edges is not None and len(baseline.score_edges) < 1024
    x, y, score, times, window, region = _stream(gbm)
    saturated = np.mean((score < 1e-5) | (score > 1 - 1e-5))
    assert saturated > 0.3  # the score distribution this test is about
    ids = [f"p{i}" for i in range(len(y))]
    events, labels = _events(ids, x, score, times, region), _label_events(ids, y, times)
    pipeline, truth, store, metrics = _pipeline(tmp_path, baseline)
    # Labels of a window arrive after the next window's predictions, in batches of 400.
    label_batches: list[np.ndarray] = []
    for w in range(N_WINDOWS + 1):
        if w < N_WINDOWS:
            rows = np.flatnonzero(window == w)
            assert pipeline.process_predictions(events[rows[0]:rows[-1] + 1]) == []
        else:
            pipeline.close_all()
        if w > 0:
            rows = np.flatnonzero(window == w - 1)
            for chunk in np.array_split(rows, len(rows) // 400):
                assert pipeline.process_labels([labels[i] for i in chunk]) == []
                label_batches.append(chunk)

    checked = 0
    for (key, start), report in pipeline.recent.items():
        members = (window == int((start - T0) // WINDOW)) & (region == key.segment.split("=")[1])
        auc = report.performance["roc_auc"]
        exact = roc_auc_score(y[members], score[members])
        assert report.n_labels == members.sum()
        assert abs(auc.value - exact) <= auc.error, (key, start)
        assert 0 < auc.error < MAX_ERROR, (key, start)
        assert auc.lower <= exact <= auc.upper
        checked += 1
    assert checked == 2 * N_WINDOWS
    eu_after = [r.performance["roc_auc"].value for (k, s), r in pipeline.recent.items()
                if k.segment == "region=eu" and s >= T0 + CHANGE_FROM * WINDOW]
    assert max(eu_after) < 0.8  # the change is visible in the windows

    # The same error stream through fresh detectors, per segment, in the same batches.
    expected = []
    streams = {s: (default_detectors("binary"), [0]) for s in ("region=eu", "region=us")}
    for chunk in label_batches:
        for segment, (detectors, seen) in streams.items():
            rows = chunk[region[chunk] == segment.split("=")[1]]
            errors = (y[rows] != (score[rows] >= 0.5)).astype(float)
            for detector in detectors:
                for index in detector.update_many(errors).tolist():
                    expected.append((segment, detector.name, seen[0] + index + 1))
            seen[0] += len(rows)
    stored = store.alarms("gbm", limit=10_000)
    assert sorted((a.segment, a.detector, a.stream_index) for a in stored) == sorted(expected)
    assert {a.detector for a in stored if a.segment == "region=eu"} == {"adwin", "page_hinkley", "ddm"}
    in_memory = {(a.segment, a.detector, a.errors_seen): a for a in truth.alarms()}
    for record in stored:
        alarm = in_memory[(record.segment, record.detector, record.stream_index)]
        assert record.event_time.timestamp() == pytest.approx(alarm.event_time, abs=1e-6)  # stored to the µs
        assert record.statistic == pytest.approx(alarm.statistic, rel=1e-12)
        assert math.isfinite(record.statistic)
    # The gauge of time since the last alarm follows the newest stored alarm per stream.
    for segment, detector in {(a.segment, a.detector) for a in stored}:
        newest = max(a.event_time.timestamp() for a in stored if (a.segment, a.detector) == (segment, detector))
        assert metrics.last_alarm.last("gbm", "v1", segment, detector) == pytest.approx(newest, abs=1e-6)
    assert metrics.registry.get_sample_value(
        "driftd_concept_drift_last_alarm_age_seconds",
        {"model": "gbm", "version": "v1", "segment": "region=eu", "detector": "adwin"},
    ) > 0
    store.close()


def test_old_grid_misses_the_same_windows(gbm):
    """Why: on the fixed 0.001 grid the saturated scores tie, the AUC is off by more
    than 0.01 and its binning error is more than 0.02 (it still bounds the truth)."""
    x, y, score, _, window, _ = _stream(gbm)
    for w in range(CHANGE_FROM):
        members = window == w
        counts = BinaryCounts()
        counts.add(y[members] == 1, score[members] >= 0.5, score[members], ScoreBins.fixed())
        auc = binary_metrics(counts)["roc_auc"]
        exact = roc_auc_score(y[members], score[members])
        assert abs(auc.value - exact) > 0.01 and auc.error > 0.02
        assert abs(auc.value - exact) <= auc.error


def test_scores_a_millionth_from_zero_and_one_are_resolved():
    """Positives at 1 - 1e-6 and 1e-6, negatives at exactly 1 and 0: the adaptive bins
    separate them, so the AUC is exact (error 0); the old grid ties them all."""
    rng = np.random.default_rng(0)
    reference = np.concatenate([rng.beta(0.1, 0.1, 5000), [0.0, 1e-6, 1 - 1e-6, 1.0]])
    bins = ScoreBins.from_reference(reference)
    scores = np.repeat([1 - 1e-6, 1.0, 1e-6, 0.0, 2e-6, 0.999998], [300, 200, 250, 250, 40, 60])
    truth = np.repeat([True, False, True, False, False, True], [300, 200, 250, 250, 40, 60])
    for chosen, exact_expected in ((bins, True), (ScoreBins.fixed(), False)):
        counts = BinaryCounts()
        counts.add(truth, scores >= 0.5, scores, chosen)
        auc = binary_metrics(counts)["roc_auc"]
        expected = roc_auc_score(truth, scores)
        assert abs(auc.value - expected) <= auc.error + 1e-12
        if exact_expected:
            assert auc.error == 0 and auc.value == pytest.approx(expected, abs=1e-12)
        else:
            assert auc.error > 0.1


def _saturated_window(rng, n):
    """Binormal logits with sd 6: scores from ~1e-9 to 1 - 1e-9; AUC = Phi(8 / (6 sqrt 2))."""
    positive = rng.random(n) < 0.4
    logit = np.where(positive, rng.normal(4, 6, n), rng.normal(-4, 6, n))
    return 1 / (1 + np.exp(-logit)), positive


def test_synthetic_saturated_scores_through_ground_truth_every_window():
    from monitor.metrics import PipelineMetrics
    from prometheus_client import CollectorRegistry
    from tests.truth.test_truth_join import _labels as label_batch
    from tests.truth.test_truth_join import _predictions

    def _starts(times):
        return np.floor(np.asarray(times) / WINDOW) * WINDOW

    rng = np.random.default_rng(5)
    reference, ref_truth = _saturated_window(rng, 20_000)
    frame = pd.DataFrame({"x": rng.normal(size=20_000), "y": ref_truth.astype(int),
                          "pred": (reference >= 0.5).astype(int), "score": reference})
    baseline = build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="binary")
    truth = GroundTruth(LabelSettings(), {"m": ModelSettings(name="m")}, lambda m, v: baseline,
                        PipelineMetrics(CollectorRegistry()), WINDOW)
    n_windows, per = 6, 2000
    for w in range(n_windows):
        scores, positive = _saturated_window(rng, per)
        ids = [f"w{w}-{i}" for i in range(per)]
        times = T0 + WINDOW * w + np.linspace(0, WINDOW - 1, per)
        truth.add_predictions(_predictions(ids, times, (scores >= 0.5).astype(int).astype(str), scores), _starts(times))
        truth.add_labels(label_batch(ids, positive.astype(int).tolist(), times))
        update = truth.current(WindowKey("m", "v1", ""), T0 + WINDOW * w)
        auc = update.performance["roc_auc"]
        exact = roc_auc_score(positive, scores)
        assert abs(auc.value - exact) <= auc.error and auc.error < MAX_ERROR, w


@pytest.mark.parametrize("source", ["gbm", "synthetic"])
def test_interval_covers_the_true_auc_at_its_nominal_rate(source, gbm):
    """300 windows of 1000 events drawn i.i.d. from a population with a known AUC.

    gbm: the population is 20,000 scored held-out rows (windows are drawn from it with
    replacement, so its AUC, ties counted 1/2, is the true value). synthetic: binormal
    logits, AUC = Phi(8 / (6 sqrt 2)) exactly. Nominal coverage 95 %: the count of
    covering windows is Binomial(300, 0.95) if the interval is right;
    P(X < 271) = 2.8e-4 and P(X > 296) = 1.6e-4, so [271, 296] rejects a correct
    interval with probability below 0.05 % (the seeds are fixed: deterministic).
    """
    from scipy.stats import norm

    rng = np.random.default_rng(21)
    if source == "gbm":
        booster = gbm[0]
        x = _features(rng, 20_000)
        pool_truth, pool_scores = _labels(rng, x).astype(bool), booster.predict(x)
        true_auc = roc_auc_score(pool_truth, pool_scores)
        bins = ScoreBins.from_reference(booster.predict(_features(rng, 6000)))

        def draw():
            rows = rng.integers(0, len(pool_scores), 1000)
            return pool_scores[rows], pool_truth[rows]
    else:
        true_auc = norm.cdf(8 / (6 * math.sqrt(2)))
        bins = ScoreBins.from_reference(_saturated_window(rng, 20_000)[0])

        def draw():
            return _saturated_window(rng, 1000)

    covered = 0
    for _ in range(300):
        scores, positive = draw()
        counts = BinaryCounts()
        counts.add(positive, scores >= 0.5, scores, bins)
        auc = binary_metrics(counts)["roc_auc"]
        assert auc.error < MAX_ERROR
        covered += auc.lower <= true_auc <= auc.upper
    assert 271 <= covered <= 296, covered


def test_baseline_build_warns_on_a_training_fit_baseline(gbm, tmp_path):
    """`driftd baseline build` on the rows the model was fitted on warns and says to use
    held-out validation data; on validation rows it does not."""
    from typer.testing import CliRunner

    from monitor.cli import app

    booster, x_train, y_train = gbm
    rng_val = np.random.default_rng(99)
    x_val = _features(rng_val, 3000)
    frames = {  # half the training rows are as fitted as all of them
        "train": _frame(x_train[:3000], y_train[:3000], booster.predict(x_train[:3000])),
        "validation": _frame(x_val, _labels(rng_val, x_val), booster.predict(x_val)),
    }
    outputs = {}
    for name, frame in frames.items():
        data = tmp_path / f"{name}.csv"
        frame.to_csv(data, index=False)
        result = CliRunner().invoke(app, [
            "baseline", "build", "--model", "gbm", "--version", name, "--data", str(data),
            "--out", str(tmp_path / f"{name}.json"), "--target", "y", "--prediction", "pred", "--score", "score",
        ])
        assert result.exit_code == 0, result.output
        outputs[name] = result.output
    assert "warning: reference performance of gbm train is near perfect" in outputs["train"]
    assert "roc_auc 1" in outputs["train"] and "held-out validation data" in outputs["train"]
    assert "warning" not in outputs["validation"]
