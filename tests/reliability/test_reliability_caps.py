"""Bounded resources: floods of names, segments, categories, labels and big messages.

Every cap in ``LimitSettings``/``LabelSettings`` holds, is counted when hit, and keeps
both the exported series and the pipeline's own dictionaries bounded however long the
flood goes on.
"""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import OTHER_SEGMENT, Pipeline
from monitor.simulate import Scenario, encode, prediction_events, training_frame

T0 = 1_767_225_600.0
SCENARIO = Scenario(model="credit", version="v1", seed=7)
FLOOD = 10_000


@pytest.fixture(scope="module")
def baseline():
    frame = training_frame(SCENARIO, n=5_000)
    return build_baseline(frame, "credit", "v1", target="target", prediction="prediction", score="score")


def make_pipeline(baseline, *, models=("credit",), truth=False, **overrides):
    settings = load_settings(None, models=[{"name": m} for m in models],
                             windows={"size_seconds": 60, "allowed_lateness_seconds": 0, "min_events": 10},
                             labels={"enabled": truth, **overrides.pop("labels", {})}, **overrides)
    registry, metrics, collector = create_metrics(settings.limits.max_models * settings.limits.max_segments_per_model)
    baselines = BaselineRegistry(settings)
    baselines.add(baseline)
    ground_truth = None
    if truth:
        from monitor.truth import GroundTruth

        ground_truth = GroundTruth(settings.labels, {m.name: m for m in settings.models}, baselines.get, metrics, 60.0)
    return registry, metrics, Pipeline(settings, metrics, collector, baselines, truth=ground_truth)


def events(n: int, start: float = T0, seed: int = 1) -> list[dict]:
    return prediction_events(SCENARIO, start, n, 50.0, seed=seed)[0]


def n_samples(registry) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(generate_latest(registry).decode()))


def counter(registry, name: str, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_unknown_model_names_are_dead_lettered_when_models_are_configured(baseline) -> None:
    registry, _, pipeline = make_pipeline(baseline)
    before = n_samples(registry)
    flood = events(FLOOD)
    for i, event in enumerate(flood):
        event["model"] = f"intruder-{i}"
    rejected = pipeline.process_predictions(list(encode(flood)))
    assert len(rejected) == FLOOD and {r.reason for r in rejected} == {"unknown_model"}
    assert counter(registry, "driftd_invalid_events_total", reason="unknown_model") == FLOOD
    assert n_samples(registry) == before  # not one new series
    assert not pipeline._layouts and not pipeline._segments and not pipeline.windows.open


def test_unknown_model_names_are_capped_when_no_models_are_configured(baseline) -> None:
    registry, _, pipeline = make_pipeline(baseline, models=(), limits={"max_models": 5}, learn_baseline_events=100)
    flood = events(FLOOD)
    for i, event in enumerate(flood):
        event["model"] = f"m{i}"
    rejected = pipeline.process_predictions(list(encode(flood)))
    assert len(pipeline._seen_models) == 5
    assert counter(registry, "driftd_capacity_dropped_total", cap="models") == FLOOD - 5
    assert len(rejected) == FLOOD - 5  # refused, with a reason, never silently
    series_after_first = n_samples(registry)
    more = events(FLOOD, start=T0 + 1000, seed=2)
    for i, event in enumerate(more):
        event["model"] = f"n{i}"
    pipeline.process_predictions(list(encode(more)))
    assert n_samples(registry) == series_after_first  # a longer flood adds no series
    assert len(pipeline._seen_models) == 5


def test_segment_flood_folds_into_other(baseline) -> None:
    registry, _, pipeline = make_pipeline(baseline, limits={"max_segments_per_model": 4})
    flood = events(FLOOD)
    for i, event in enumerate(flood):
        event["segment"] = {"customer": f"c{i}"}
    pipeline.process_predictions(list(encode(flood)))
    pipeline.close_all()
    allowed = pipeline._segments[("credit", "v1")]
    assert len(allowed) == 4
    assert counter(registry, "driftd_capacity_dropped_total", cap="segments") == FLOOD - 4
    segments = {key.segment for key, _ in pipeline.recent}
    assert OTHER_SEGMENT in segments and len(segments) <= 5
    folded = sum(r.n_events for (key, _), r in pipeline.recent.items() if key.segment == OTHER_SEGMENT)
    assert folded == FLOOD - 4  # nothing lost: the rest is in __other__

    # Twice as long a flood: the same number of series and tracked segments.
    series = n_samples(registry)
    more = events(2 * FLOOD, start=T0 + 10_000, seed=3)
    for i, event in enumerate(more):
        event["segment"] = {"customer": f"d{i}"}
    pipeline.process_predictions(list(encode(more)))
    pipeline.close_all()
    assert len(pipeline._segments[("credit", "v1")]) == 4
    assert n_samples(registry) == series


def test_model_version_flood_is_bounded(baseline) -> None:
    """Versions are free text: a flood of them must not grow series or learning buffers."""
    registry, _, pipeline = make_pipeline(baseline, learn_baseline_events=100)
    flood = events(FLOOD)
    for i, event in enumerate(flood):
        event["model_version"] = f"v{i}"
    pipeline.process_predictions(list(encode(flood)))
    series = n_samples(registry)
    more = events(FLOOD, start=T0 + 1000, seed=4)
    for i, event in enumerate(more):
        event["model_version"] = f"w{i}"
    pipeline.process_predictions(list(encode(more)))
    assert n_samples(registry) - series < 100, "each new model_version added exported series"


def test_unseen_categories_are_counted_not_stored(baseline) -> None:
    _, _, pipeline = make_pipeline(baseline)
    flood = events(2_000)
    for i, event in enumerate(flood):
        event["features"]["cat_0"] = f"never-seen-{i}"
    pipeline.process_predictions(list(encode(flood)))
    pipeline.close_all()
    reports = list(pipeline.recent.values())
    assert sum(r.n_events for r in reports) == 2_000
    for report in reports:
        assert report.unseen_ratio["cat_0"] == pytest.approx(1.0)
        assert report.unseen_ratio.get("cat_1", 0.0) == pytest.approx(0.0)


def test_oversized_message_is_refused(baseline) -> None:
    registry, _, pipeline = make_pipeline(baseline, limits={"max_message_bytes": 4096})
    event = events(1)[0]
    event["features"]["cat_0"] = "x" * 5000
    rejected = pipeline.process_predictions([orjson.dumps(event)])
    assert [r.reason for r in rejected] == ["too_large"]
    assert counter(registry, "driftd_invalid_events_total", reason="too_large") == 1


def test_label_join_is_capped_and_evictions_counted(baseline) -> None:
    registry, _, pipeline = make_pipeline(baseline, truth=True, labels={"max_pending": 500})
    pipeline.process_predictions(list(encode(events(5_000))))
    assert pipeline.truth.pending_count <= 500
    evicted = sum(s.value for f in text_string_to_metric_families(generate_latest(registry).decode())
                  if f.name == "driftd_label_join_evictions" for s in f.samples if s.name.endswith("_total"))
    assert evicted >= 4_500


def test_exported_window_keys_are_capped() -> None:
    from monitor.results import WindowKey, WindowReport

    registry, _, collector = create_metrics(3)
    accepted = [collector.publish(WindowReport(key=WindowKey("m", "v", f"s{i}"), window_start=T0, window_end=T0 + 60, n_events=1))
                for i in range(10)]
    assert accepted.count(True) == 3
    assert counter(registry, "driftd_series_capped_total") == 7
    assert len(collector.reports()) == 3


def test_memory_stays_bounded_over_a_long_mixed_flood(baseline) -> None:
    """Pipeline dictionaries reach a plateau: the second half of the stream adds nothing."""
    _, _, pipeline = make_pipeline(baseline, limits={"max_segments_per_model": 4})

    def sizes():
        return (len(pipeline._segments[("credit", "v1")]), len(pipeline.windows.open), len(pipeline.recent), len(pipeline._layouts))

    half = None
    for round_ in range(6):
        chunk = events(3_000, start=T0 + 60 * round_, seed=10 + round_)
        for i, event in enumerate(chunk):
            event["segment"] = {"customer": f"r{round_}-{i}"}
            event["features"]["cat_1"] = f"new-{round_}-{i}"
        pipeline.process_predictions(list(encode(chunk)))
        pipeline.close_due()
        if round_ == 2:
            half = sizes()
    segments, open_windows, recent, layouts = sizes()
    assert segments == half[0] == 4 and layouts == 1
    assert open_windows <= 5 * pipeline.settings.limits.max_open_windows_per_key
    assert recent <= 2000  # the pipeline keeps a bounded history of reports (_RECENT_REPORTS)
