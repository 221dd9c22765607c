"""Late events reach the store: counted per key and set on the key's next closed window.

Events of a window the watermark has passed are excluded (``driftd_late_events_total``)
and, with this, kept as ``n_late`` of the next window of the same (model, version,
segment), so that the app can name late-heavy streams from the store alone.
"""

from __future__ import annotations

from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.simulate import Scenario, encode, prediction_events, training_frame
from monitor.store import open_store

T0 = 1_767_225_600.0
SCENARIO = Scenario(model="credit", version="v1", seed=9)


def test_late_events_are_stored_with_the_next_window_of_their_key(tmp_path) -> None:
    settings = load_settings(
        None,
        models=[{"name": "credit"}],
        windows={"size_seconds": 60, "allowed_lateness_seconds": 0, "min_events": 10},
    )
    registry, metrics, collector = create_metrics(100)
    baselines = BaselineRegistry(settings)
    baselines.add(
        build_baseline(
            training_frame(SCENARIO, n=2_000),
            "credit",
            "v1",
            target="target",
            prediction="prediction",
            score="score",
        )
    )
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    pipeline = Pipeline(
        settings, metrics, collector, baselines, sinks=[lambda r: store.write_reports([r])]
    )

    def send(start: float, n: int, seed: int, rate: float) -> list[dict]:
        events, _ = prediction_events(SCENARIO, start, n, rate, seed=seed)
        pipeline.process_predictions(list(encode(events)))
        pipeline.close_due()  # as the consumer does after every poll
        return events

    send(T0, 600, 1, 1.0)  # windows 0..9 of one minute; the watermark closes 0..8
    late = send(T0, 100, 2, 10.0)  # ten seconds of window 0 again: all late
    by_segment = {s: sum(1 for e in late if e["segment"]["region"] == s) for s in ("eu", "us")}
    send(T0 + 600, 10, 3, 1.0)  # moves the watermark: window 9 closes and carries the late count
    pipeline.close_all()
    assert registry.get_sample_value("driftd_late_events_total", {"model": "credit"}) == 100
    windows = {(w.segment, w.window_start.timestamp()): w for w in store.windows("credit")}
    assert windows[("region=eu", T0 + 540)].n_late == by_segment["eu"]
    assert windows[("region=us", T0 + 540)].n_late == by_segment["us"]
    assert sum(w.n_late for w in windows.values()) == 100  # counted once
    report = store.window_report("credit", "v1", "region=eu", T0 + 540)
    assert report.n_late == by_segment["eu"]
    store.close()
