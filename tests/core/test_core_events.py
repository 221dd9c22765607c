"""The fast validators agree with the published JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import events
from monitor.events import Invalid, check_label, check_prediction, parse_timestamp

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
PREDICTION_SCHEMA = json.loads((SCHEMAS / "prediction.v1.json").read_text())
LABEL_SCHEMA = json.loads((SCHEMAS / "label.v1.json").read_text())
FORMATS = jsonschema.FormatChecker()

names = st.text(alphabet="abcXYZ019_.-", min_size=1, max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=3), inner, max_size=2)), max_leaves=4)
timestamps = st.one_of(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.integers(min_value=-5, max_value=4_000_000_000),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00", "yesterday", "", "2026-13-01T00:00:00Z"]),
    st.booleans(),
)


def prediction_like() -> st.SearchStrategy[dict]:
    base = {
        "model": st.one_of(names, st.just(""), st.just("bad name!")),
        "model_version": st.one_of(names, st.integers()),
        "prediction_id": st.one_of(names, st.none()),
        "timestamp": timestamps,
        "features": st.one_of(st.dictionaries(names, scalars, max_size=4), st.dictionaries(names, anything, max_size=2), st.lists(scalars, max_size=1)),
        "prediction": st.one_of(scalars, st.lists(scalars, max_size=1)),
    }
    optional = {
        "scores": st.dictionaries(names, st.one_of(st.floats(-0.5, 1.5, allow_nan=False), st.text(max_size=2)), max_size=3),
        "segment": st.dictionaries(names, st.one_of(st.text(max_size=4), st.integers()), max_size=3),
        "variant": st.sampled_from(["champion", "challenger", "shadow", "other"]),
        "latency_ms": st.one_of(st.floats(-1, 100, allow_nan=False), st.text(max_size=2)),
    }
    return st.fixed_dictionaries(base, optional=optional)


def schema_valid(schema: dict, obj: dict) -> bool:
    return not list(jsonschema.Draft202012Validator(schema, format_checker=FORMATS).iter_errors(obj))


def fast_valid(check, obj: dict) -> bool:
    try:
        check(obj)
    except Invalid:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prediction_like())
def test_prediction_validator_agrees_with_schema(obj: dict) -> None:
    assert fast_valid(check_prediction, obj) == schema_valid(PREDICTION_SCHEMA, obj), obj


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries(
    {"prediction_id": st.one_of(names, st.none()), "label": st.one_of(scalars, st.lists(scalars, max_size=1)), "timestamp": timestamps},
    optional={"model": st.one_of(names, st.integers())},
))
def test_label_validator_agrees_with_schema(obj: dict) -> None:
    assert fast_valid(check_label, obj) == schema_valid(LABEL_SCHEMA, obj), obj


def test_timestamps() -> None:
    assert parse_timestamp("2026-01-01T01:00:00+01:00") == parse_timestamp(1767225600)
    for bad in ("nope", True, -1, 1e12, None, "x" * 100):
        with pytest.raises(Invalid) as err:
            parse_timestamp(bad)
        assert err.value.reason == events.BAD_TIMESTAMP


def test_decode_reasons() -> None:
    with pytest.raises(Invalid) as err:
        events.decode(b"x" * 11, max_bytes=10)
    assert err.value.reason == events.TOO_LARGE
    with pytest.raises(Invalid) as err:
        events.decode(b"{nope", max_bytes=100)
    assert err.value.reason == events.NOT_JSON
    with pytest.raises(Invalid) as err:
        events.decode(b"[1, 2]", max_bytes=100)
    assert err.value.reason == events.SCHEMA
    with pytest.raises(Invalid) as err:
        events.decode(None, max_bytes=100)
    assert err.value.reason == events.NOT_JSON
