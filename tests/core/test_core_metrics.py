"""Metric names follow Prometheus conventions and the documentation lists every one."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest

from monitor.metrics import create_metrics, describe

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_list_every_metric() -> None:
    assert DOCS.read_text(encoding="utf-8") == describe(), "regenerate docs/metrics.md with monitor.metrics.describe()"


def test_names_follow_conventions() -> None:
    registry, _, _ = create_metrics(10)
    for family in registry.collect():
        assert re.fullmatch(r"driftd_[a-z0-9_]+", family.name), family.name
        assert not family.name.endswith("_total"), "prometheus_client adds _total to counters"
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert family.documentation


def test_collector_caps_window_keys() -> None:
    from monitor.results import WindowKey, WindowReport

    registry, _, windows = create_metrics(max_keys=3)
    for i in range(50):
        windows.publish(WindowReport(WindowKey(f"m{i}", "v", ""), 0.0, 300.0, 1))
    text = generate_latest(registry).decode()
    exported = {line.split('model="')[1].split('"')[0] for line in text.splitlines() if line.startswith("driftd_window_events{")}
    assert len(exported) == 3
    assert "driftd_series_capped_total 47.0" in text


def test_observe_many_equals_observe_per_value() -> None:
    import numpy as np
    from prometheus_client import CollectorRegistry, Histogram

    from monitor.metrics import observe_many

    # Values on bucket bounds, between them, past the last finite bound, and NaN.
    values = np.array([0.0, 0.1, 0.1000001, 0.5, 0.7, 5.0, 1e9, -1.0, np.nan, 0.3])
    one, bulk = CollectorRegistry(), CollectorRegistry()
    per_value = Histogram("h", "h", buckets=(0.1, 0.5, 1, 5), registry=one)
    at_once = Histogram("h", "h", buckets=(0.1, 0.5, 1, 5), registry=bulk)
    for value in values[~np.isnan(values)]:
        per_value.observe(float(value))
    observe_many(at_once, values)
    observe_many(at_once, np.array([]))
    samples = lambda registry: {(s.name, tuple(sorted(s.labels.items()))): s.value  # noqa: E731
                                for m in registry.collect() for s in m.samples if not s.name.endswith("_created")}
    assert samples(bulk) == samples(one)
    assert bulk.get_sample_value("h_count") == 9
