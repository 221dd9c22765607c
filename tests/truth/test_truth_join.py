"""GroundTruth: the delayed-label join, per-window realised metrics, CBPE, detectors,
bounds and checkpoints — with real baselines and a real Prometheus registry."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from detectors.performance import auc_binning_error
from monitor.baseline import build_baseline
from monitor.batch import LabelBatch, PredictionBatch
from monitor.config import LabelSettings, ModelSettings
from monitor.metrics import PipelineMetrics
from monitor.results import WindowKey
from monitor.truth import GroundTruth

WINDOW = 300.0
T0 = 1_700_000_100.0  # not aligned to the window grid on purpose


def _predictions(ids, times, predictions, scores=None, segments=None, model="m", version="v1"):
    n = len(ids)
    return PredictionBatch(
        model=model, version=version, prediction_ids=list(ids), event_times=np.asarray(times, float),
        segments=list(segments) if segments is not None else [""] * n,
        numeric_names=[], numeric=np.empty((n, 0)), categorical_names=[], categorical=np.empty((n, 0), object),
        predictions=np.asarray(predictions, dtype=object if np.asarray(predictions).dtype.kind in "OUb" else float),
        scores=None if scores is None else np.asarray(scores, float),
    )


def _labels(ids, labels, times, models=None):
    return LabelBatch(list(ids), list(labels), np.asarray(times, float), list(models) if models else [None] * len(ids))


def _starts(times):
    return np.floor(np.asarray(times) / WINDOW) * WINDOW


def _truth(models=None, baselines=None, **settings):
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    models = models or {"m": ModelSettings(name="m")}
    settings.setdefault("settle_seconds", 0)  # these tests feed each batch at once; settling: test_truth_settle.py
    truth = GroundTruth(
        LabelSettings(**settings), models, baselines or (lambda m, v: None), metrics, WINDOW,
    )
    return truth, registry


def _value(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def _stream(seed, n, drift_from=None):
    """A calibrated binary model: score s, label ~ Bernoulli(s) (flipped after drift_from)."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 2, n)
    truth = rng.random(n) < scores
    if drift_from is not None:
        truth[drift_from:] = ~truth[drift_from:]
    times = T0 + np.sort(rng.uniform(0, 4 * WINDOW, n))
    ids = [f"p{seed}-{i}" for i in range(n)]
    predicted = np.where(scores >= 0.5, "1", "0").astype(object)
    labels = np.where(truth, 1, 0)  # labels as ints, predictions as strings
    return ids, times, predicted, scores, labels


def test_shuffled_delayed_labels_give_offline_metrics_per_prediction_window():
    truth, registry = _truth()
    ids, times, predicted, scores, labels = _stream(0, 6000)
    for lo in range(0, 6000, 1000):  # predictions in batches
        sl = slice(lo, lo + 1000)
        truth.add_predictions(_predictions(ids[sl], times[sl], predicted[sl], scores[sl]), _starts(times[sl]))
    assert truth.pending_count == 6000
    order = np.random.default_rng(1).permutation(6000)
    label_times = times[order] + 3 * WINDOW  # labels come 15 minutes later, shuffled
    updates = {}
    for lo in range(0, 6000, 700):
        rows = order[lo:lo + 700]
        dead = truth.add_labels(_labels([ids[i] for i in rows], labels[rows].tolist(), label_times[lo:lo + 700]))
        assert dead == []
        for update in truth.updates():
            updates[update.window_start] = update
    assert truth.pending_count == 0
    assert _value(registry, "driftd_labels_total", outcome="joined") == 6000

    starts = _starts(times)
    assert sorted(updates) == sorted(set(starts.tolist()))  # the prediction's window, not the label's
    for start, update in updates.items():
        rows = starts == start
        y, p, s = labels[rows] == 1, predicted[rows] == "1", scores[rows]
        assert update.n_labels == update.n_predictions == rows.sum()
        perf = update.performance
        assert perf["accuracy"].value == pytest.approx(accuracy_score(y, p), abs=1e-12)
        assert perf["precision"].value == pytest.approx(precision_score(y, p), abs=1e-12)
        assert perf["recall"].value == pytest.approx(recall_score(y, p), abs=1e-12)
        assert perf["f1"].value == pytest.approx(f1_score(y, p), abs=1e-12)
        assert perf["log_loss"].value == pytest.approx(log_loss(y, s), rel=1e-10)
        # Binned ROC AUC: within its documented bound.
        hist_pos = np.bincount(np.searchsorted(np.linspace(0, 1, 1001)[1:-1], s[y]), minlength=1000)
        hist_neg = np.bincount(np.searchsorted(np.linspace(0, 1, 1001)[1:-1], s[~y]), minlength=1000)
        assert abs(perf["roc_auc"].value - roc_auc_score(y, s)) <= auc_binning_error(hist_pos, hist_neg) + 1e-12
        assert update.calibration["brier_score"] == pytest.approx(brier_score_loss(y, s), rel=1e-10)
        assert len(update.calibration["reliability_curve"]["window"]) == 10
        assert update.label_counts == {"0": int((~y).sum()), "1": int(y.sum())}
    # Nothing changed since: no further updates.
    assert truth.updates() == []


def test_early_duplicate_and_unknown_labels():
    truth, registry = _truth(pending_ttl_seconds=3600)
    # Label before its prediction: kept, joined when the prediction arrives.
    assert truth.add_labels(_labels(["a", "a"], ["1", "1"], [T0, T0])) == []
    assert truth.early_count == 1
    assert _value(registry, "driftd_labels_total", outcome="early") == 1
    assert _value(registry, "driftd_labels_total", outcome="duplicate") == 1
    truth.add_predictions(_predictions(["a", "b"], [T0 - 5, T0 - 5], ["1", "0"], [0.9, 0.2]), _starts([T0 - 5] * 2))
    assert truth.early_count == 0 and truth.pending_count == 1
    assert _value(registry, "driftd_labels_total", outcome="joined") == 1
    # Second label for a joined prediction: a duplicate, not counted twice.
    truth.add_labels(_labels(["a", "b", "b"], ["0", "0", "1"], [T0 + 1] * 3))
    assert _value(registry, "driftd_labels_total", outcome="duplicate") == 3
    [update] = truth.updates()
    assert update.n_labels == 2 and update.performance["accuracy"].value == 1.0
    # A label nobody predicted: buffered, then dead-lettered once the TTL passes.
    truth.add_labels(_labels(["ghost"], ["1"], [T0 + 10], models=["m"]))
    assert truth.drain_dead_labels() == []
    truth.add_predictions(_predictions(["c"], [T0 + 4000], ["1"], [0.7]), _starts([T0 + 4000]))
    [dead] = truth.drain_dead_labels()
    assert (dead.prediction_id, dead.reason, dead.label) == ("ghost", "unknown_prediction", "1")
    assert _value(registry, "driftd_labels_total", outcome="unknown") == 1


def test_immediate_dead_letters_name_the_row_and_reason():
    models = {"m": ModelSettings(name="m"), "r": ModelSettings(name="r", task="regression")}
    truth, _ = _truth(models=models, max_pending=10)
    truth.add_predictions(_predictions(["r1", "r2"], [T0, T0], [1.5, 2.0], model="r"), _starts([T0, T0]))
    dead = truth.add_labels(_labels(["x", "r1", "r2"], [1, "not a number", 3.0], [T0] * 3, models=["nope", "r", "r"]))
    assert [(row, reason) for row, reason, _ in dead] == [(0, "unknown_model"), (1, "invalid_label")]
    assert "nope" in dead[0][2]
    [update] = truth.updates()
    assert update.n_labels == 1 and update.performance["mae"].value == pytest.approx(1.0)
    # Early-label buffer full: dead-lettered at once.
    small = GroundTruth(LabelSettings(max_pending=10), models, lambda m, v: None, None, WINDOW, max_early=2)
    dead = small.add_labels(_labels(["e1", "e2", "e3"], [1, 1, 1], [T0] * 3))
    assert dead == [(2, "unknown_prediction", dead[0][2])] and "buffer is full" in dead[0][2]


def test_pending_store_is_bounded_by_ttl_and_capacity():
    truth, registry = _truth(pending_ttl_seconds=600, max_pending=1000)
    ids = [f"p{i}" for i in range(1500)]
    times = T0 + np.arange(1500) * 0.1
    truth.add_predictions(_predictions(ids, times, ["1"] * 1500, np.full(1500, 0.8)), _starts(times))
    assert truth.pending_count == 1000
    assert _value(registry, "driftd_label_join_evictions_total", reason="capacity") == 500
    assert _value(registry, "driftd_label_join_pending") == 1000
    # The oldest 500 are gone: their labels are early (unknown) now, the rest join.
    truth.add_labels(_labels(["p0", "p1499"], [1, 1], [T0 + 200] * 2))
    assert _value(registry, "driftd_labels_total", outcome="joined") == 1
    # Event time moves past the TTL: everything pending is evicted.
    truth.add_predictions(_predictions(["late"], [T0 + 2000], ["1"], [0.5]), _starts([T0 + 2000]))
    assert truth.pending_count == 1
    assert _value(registry, "driftd_label_join_evictions_total", reason="ttl") == 999  # all but the one joined
    assert [d.prediction_id for d in truth.drain_dead_labels()] == ["p0"]


def test_concept_flip_raises_sequential_alarms_after_the_flip():
    truth, registry = _truth()
    ids, times, predicted, scores, labels = _stream(3, 8000, drift_from=4000)
    truth.add_predictions(_predictions(ids, times, predicted, scores), _starts(times))
    for lo in range(0, 8000, 500):
        truth.add_labels(_labels(ids[lo:lo + 500], labels[lo:lo + 500].tolist(), times[lo:lo + 500]))
    for detector in ("adwin", "page_hinkley", "ddm"):
        count = _value(registry, "driftd_concept_drift_alarms_total", model="m", version="v1", detector=detector)
        assert count >= 1, detector
        first = min(a.errors_seen for a in truth.alarms() if a.detector == detector)
        assert 4000 < first < 4600, detector


def test_cbpe_estimate_at_window_close_tracks_realised_performance():
    rng = np.random.default_rng(5)
    reference_scores = rng.beta(2, 2, 20_000)
    reference_truth = (rng.random(20_000) < reference_scores).astype(int)
    frame = pd.DataFrame({
        "x": rng.normal(size=20_000), "y": reference_truth,
        "pred": (reference_scores >= 0.5).astype(int), "score": reference_scores,
    })
    baseline = build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="binary")
    assert "cbpe_map" in baseline.calibration and baseline.performance["accuracy"] > 0.6
    truth, _ = _truth(baselines=lambda m, v: baseline if (m, v) == ("m", "v1") else None)
    ids, times, predicted, scores, labels = _stream(6, 8000)
    scores_shifted = np.clip(scores ** 0.5, 0, 1)  # covariate shift: more confident scores
    labels = (np.random.default_rng(7).random(8000) < scores_shifted).astype(int)
    predicted = np.where(scores_shifted >= 0.5, "1", "0").astype(object)
    truth.add_predictions(_predictions(ids, times, predicted, scores_shifted), _starts(times))
    starts = _starts(times)
    estimates = {s: truth.estimate(WindowKey("m", "v1", ""), s) for s in set(starts.tolist())}
    truth.add_labels(_labels(ids, labels.tolist(), times + 60))
    for update in truth.updates():
        estimate = estimates[update.window_start]
        for metric in ("accuracy", "roc_auc"):
            assert abs(estimate[metric].value - update.performance[metric].value) < 0.03, metric
        assert estimate["accuracy"].lower < update.performance["accuracy"].value < estimate["accuracy"].upper
    assert truth.estimate(WindowKey("m", "v1", "other"), float(starts[0])) == {}


def test_segments_multiclass_and_label_drift():
    profile = pd.DataFrame({"x": np.arange(3000.0), "y": np.tile(["a", "b", "c"], 1000), "pred": np.tile(["a", "b", "c"], 1000)})
    baseline = build_baseline(profile, "mc", "v1", target="y", prediction="pred", task="multiclass")
    models = {"mc": ModelSettings(name="mc", task="multiclass")}
    truth, _ = _truth(models=models, baselines=lambda m, v: baseline)
    rng = np.random.default_rng(8)
    n = 3000
    actual = rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1])  # prior moved
    predicted = np.where(rng.random(n) < 0.7, actual, rng.choice(["a", "b", "c", "d"], n)).astype(object)
    segments = rng.choice(["region=eu", "region=us"], n)
    times = np.full(n, T0)
    ids = [f"q{i}" for i in range(n)]
    truth.add_predictions(_predictions(ids, times, predicted, segments=segments, model="mc"), _starts(times))
    truth.add_labels(_labels(ids, actual.tolist(), times + 5))
    updates = {u.key.segment: u for u in truth.updates()}
    assert set(updates) == {"region=eu", "region=us"}
    for segment, update in updates.items():
        rows = segments == segment
        assert update.performance["accuracy"].value == pytest.approx(accuracy_score(actual[rows], predicted[rows].astype(str)))
        assert update.performance["f1"].value == pytest.approx(
            f1_score(actual[rows], predicted[rows].astype(str), average="macro", zero_division=0))
        assert {r.method: r.drifted for r in update.label_drift} == {"chisquare": True, "psi": True}


def test_state_round_trip_resumes_exactly():
    ids, times, predicted, scores, labels = _stream(9, 4000, drift_from=2500)
    order = np.random.default_rng(2).permutation(4000)

    def run(checkpoint_at: int | None):
        truth, _ = _truth()
        truth.add_predictions(_predictions(ids[:3000], times[:3000], predicted[:3000], scores[:3000]), _starts(times[:3000]))
        truth.add_labels(_labels(["early-1", ids[3500]], [1, labels[3500]], [T0, T0]))
        seen = {}
        for step, lo in enumerate(range(0, 4000, 500)):
            if step == checkpoint_at:
                restored, _ = _truth()
                restored.from_state(truth.to_state())
                assert restored.to_state() == truth.to_state()
                truth = restored
            if lo == 1000:
                truth.add_predictions(_predictions(ids[3000:], times[3000:], predicted[3000:], scores[3000:]), _starts(times[3000:]))
            rows = [i for i in order[lo:lo + 500] if i < 3000 or lo >= 1000]
            truth.add_labels(_labels([ids[i] for i in rows], labels[rows].tolist(), times[rows] + 10))
            seen.update({u.window_start: (u.n_labels, u.performance) for u in truth.updates()})
        return seen, [(a.detector, a.errors_seen) for a in truth.alarms()], truth.pending_count

    assert run(None) == run(3)


def test_binary_model_logging_scores_as_predictions_is_thresholded():
    models = {"m": ModelSettings(name="m", decision_threshold=0.7)}
    truth, _ = _truth(models=models)
    scores = np.array([0.9, 0.8, 0.6, 0.2])
    truth.add_predictions(_predictions(list("abcd"), [T0] * 4, scores), _starts([T0] * 4))
    truth.add_labels(_labels(list("abcd"), [1, 0, 1, 0], [T0] * 4))
    [update] = truth.updates()
    # predicted positive: a, b (>= 0.7); right: a, d
    assert update.performance["accuracy"].value == 0.5
    assert update.performance["log_loss"].value == pytest.approx(log_loss([1, 0, 1, 0], scores))
    assert truth.estimate(WindowKey("m", "v1", ""), float(_starts([T0])[0]))["accuracy"].value > 0


def test_current_gives_label_results_of_a_window_without_draining_updates():
    truth, _ = _truth()
    truth.add_predictions(_predictions(["a", "b"], [T0, T0], ["1", "0"], [0.8, 0.3]), _starts([T0, T0]))
    key, start = WindowKey("m", "v1", ""), float(_starts([T0])[0])
    assert truth.current(key, start) is None
    truth.add_labels(_labels(["a"], [1], [T0 + 1]))
    now = truth.current(key, start)
    assert now is not None and now.n_labels == 1 and now.n_predictions == 2
    [update] = truth.updates()
    assert repr(update) == repr(now)  # NaN-safe equality


def test_a_timestamp_from_the_future_does_not_expire_everything():
    truth, registry = _truth(pending_ttl_seconds=600)
    truth.add_predictions(_predictions(["a", "b"], [T0, T0], ["1", "0"], [0.9, 0.1]), _starts([T0, T0]))
    truth.add_labels(_labels(["zzz"], [1], [4_000_000_000.0]))  # year 2096
    assert truth.pending_count == 2
    assert _value(registry, "driftd_label_join_evictions_total", reason="ttl") == 0


def test_regression_label_drift_on_the_baseline_label_bins():
    """Numeric labels are counted on the baseline label's edges; PSI and Jensen–Shannon
    equal the detectors applied to a direct histogram, and survive a checkpoint."""
    from detectors import REGISTRY
    from detectors.base import FeatureData
    from monitor.truth.window import WindowTruth

    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(10, 2, 5000)})
    reference["pred"] = reference["y"] + rng.normal(0, 1, 5000)
    baseline = build_baseline(reference, "r", "v1", target="y", prediction="pred", task="regression")
    assert baseline.label.kind == "numeric"
    models = {"r": ModelSettings(name="r", task="regression")}
    results = {}
    for name, mean in (("same", 10.0), ("moved", 11.5)):
        truth, _ = _truth(models=models, baselines=lambda m, v: baseline)
        n = 2000
        actual = rng.normal(mean, 2, n)
        times = np.full(n, T0)
        ids = [f"{name}{i}" for i in range(n)]
        truth.add_predictions(_predictions(ids, times, actual + rng.normal(0, 1, n), model="r"), _starts(times))
        truth.add_labels(_labels(ids, actual.tolist(), times + 5))
        (update,) = truth.updates()
        edges = baseline.label.edges
        direct = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1).astype(float)
        data = FeatureData("numeric", baseline.label.counts, direct)
        for result in update.label_drift:
            assert result.score == pytest.approx(REGISTRY[result.method].score(data).score, rel=1e-12)
        results[name] = {r.method: r.drifted for r in update.label_drift}
        (window_state,) = [w for _, _, w in orjson.loads(truth.to_state())["windows"]]
        restored = WindowTruth.from_state(window_state)
        np.testing.assert_array_equal(restored.label_bins, direct.astype(np.int64))
    assert results == {"same": {"psi": False, "jensenshannon": False}, "moved": {"psi": True, "jensenshannon": True}}


def test_take_wrong_names_the_wrong_predictions_per_model():
    models = {
        "bin": ModelSettings(name="bin"),
        "multi": ModelSettings(name="multi", task="multiclass"),
        "reg": ModelSettings(name="reg", task="regression", wrong_abs_error=1.0),
        "reg_off": ModelSettings(name="reg_off", task="regression"),
    }
    truth, _ = _truth(models=models)
    times = np.full(4, T0)
    truth.add_predictions(_predictions(["b0", "b1", "b2", "b3"], times, ["1", "0", "1", "0"], model="bin"), _starts(times))
    truth.add_predictions(_predictions(["m0", "m1", "m2"], times[:3], ["cat", "dog", "eel"], model="multi"), _starts(times[:3]))
    truth.add_predictions(_predictions(["r0", "r1", "r2", "r3"], times, [10.0, 10.0, 10.0, 10.0], model="reg"), _starts(times))
    truth.add_predictions(_predictions(["o0"], times[:1], [10.0], model="reg_off"), _starts(times[:1]))
    assert truth.take_wrong() == {}
    # b3's label comes before its prediction (early) and joins when the prediction does.
    truth.add_labels(_labels(["b0", "b1", "b2", "m0", "m1", "m2", "r0", "r1", "r2", "r3", "o0", "x9"],
                             [1, 1, "0", "cat", "cow", "eel", 10.5, 11.0, 8.2, "n/a", 50.0, 1], np.full(12, T0 + 5)))
    # Regression: |error| 0.5 and exactly 1.0 are not wrong, 1.8 is; an invalid label is not.
    assert truth.take_wrong() == {"bin": ["b1", "b2"], "multi": ["m1"], "reg": ["r2"]}
    assert truth.take_wrong() == {}  # taken
    truth.add_labels(_labels(["b9"], [0], [T0 + 6]))  # early
    truth.add_predictions(_predictions(["b9"], [T0 + 7], ["1"], model="bin"), _starts([T0 + 7]))
    assert truth.take_wrong() == {"bin": ["b9"]}


def test_wrong_abs_error_is_for_regression_models_only():
    from monitor.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"models\.0.*wrong_abs_error applies to task regression only"):
        load_settings(None, models=[{"name": "m", "wrong_abs_error": 1.0}])
    with pytest.raises(ConfigError, match=r"models\.0\.wrong_abs_error: Input should be greater than 0"):
        load_settings(None, models=[{"name": "m", "task": "regression", "wrong_abs_error": 0}])
