"""Hostile input: the decoder and validator never crash, and never drop silently.

Every message is either accepted into a window or rejected with one of the known
reasons (and so dead-lettered and counted by the consumer).
"""

from __future__ import annotations

import math

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.events import INVALID_REASONS
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.simulate import Scenario, prediction_events, training_frame

SCENARIO = Scenario(model="credit", version="v1", n_numeric=3, n_categorical=1, seed=5)
_BASELINE = build_baseline(training_frame(SCENARIO, n=2000), "credit", "v1", prediction="prediction", score="score")
VALID, _ = prediction_events(SCENARIO, 1_767_225_600.0, 50, 1.0)


def pipeline() -> Pipeline:
    settings = load_settings(None, models=[{"name": "credit"}], limits={"max_message_bytes": 20_000})
    _, metrics, collector = create_metrics(10)
    registry = BaselineRegistry(settings)
    registry.add(_BASELINE)
    return Pipeline(settings, metrics, collector, registry)


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


def mutate(event: dict, key: str, value: object) -> bytes:
    changed = dict(event)
    changed[key] = value
    try:
        return orjson.dumps(changed, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return repr(changed).encode()  # not JSON at all: must be rejected as such


def deep(levels: int) -> bytes:
    return b'{"features": ' + b"[" * levels + b"]" * levels + b"}"


messages = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.builds(mutate, st.sampled_from(VALID), st.sampled_from(["model", "model_version", "prediction_id", "timestamp", "features", "prediction", "scores", "segment", "variant", "latency_ms"]), json_values),
    st.builds(lambda e, name, value: mutate(e, "features", {**e["features"], name: value}), st.sampled_from(VALID), st.sampled_from(["num_0", "cat_0", "extra"]), json_values),
    st.integers(1, 3000).map(deep),
    st.sampled_from([b"NaN", b"Infinity", b'{"timestamp": 1e400}', b"\xff\xfe", "\u202e\U0001f600".encode(), b"x" * 30_000, b"1" * 5000]),
    st.sampled_from(VALID).map(orjson.dumps),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(messages, min_size=1, max_size=20))
def test_every_message_is_accepted_or_rejected_with_a_reason(batch: list[bytes]) -> None:
    target = pipeline()
    rejected = target.process_predictions(batch)
    assert all(r.reason in INVALID_REASONS for r in rejected)
    assert len({r.index for r in rejected}) == len(rejected)
    accepted = target.metrics.events.labels(model="credit", version="v1")._value.get()
    assert accepted + len(rejected) == len(batch)
    target.close_all()
    # Whatever was accepted is finite and in the windows.
    assert sum(r.n_events for r in target.recent.values()) == accepted
    for report in target.recent.values():
        for result in report.features:
            assert result.score is None or not math.isinf(result.score)


def test_labels_never_crash() -> None:
    target = pipeline()
    batch = [b"", b"{}", b'{"prediction_id": "x", "label": 1, "timestamp": 1}', b'{"prediction_id": "x", "label": [1], "timestamp": 1}', b"\x00" * 10]
    rejected = target.process_labels(batch)
    assert {r.index for r in rejected} >= {0, 1, 3, 4}
