"""The event contract: decoding and validating prediction and label messages.

The JSON Schemas in ``schemas/`` are the published contract; the checks here are a
hand-written equivalent that runs at ingest speed (a generic JSON Schema validator
costs more than the rest of the pipeline). ``tests/test_events.py`` checks that both
agree on generated events.

Every function here returns a reason instead of raising on bad input, so that the
consumer can count and dead-letter the message and go on.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = [
    "INVALID_REASONS",
    "Invalid",
    "category_text",
    "check_label",
    "check_not_future",
    "check_prediction",
    "decode",
    "parse_timestamp",
    "segment_key",
]

# Values of the ``reason`` label of driftd_invalid_events_total and of the
# ``driftd-reason`` dead-letter header. Keep in sync with docs/metrics.md.
NOT_JSON: Final = "not_json"
SCHEMA: Final = "schema"
TOO_LARGE: Final = "too_large"
UNKNOWN_MODEL: Final = "unknown_model"
BAD_TIMESTAMP: Final = "bad_timestamp"
UNKNOWN_PREDICTION: Final = "unknown_prediction"
CAPACITY: Final = "capacity"
# Dead-letter reason only (counted in driftd_late_events_total): behind the watermark.
LATE: Final = "late"
INVALID_REASONS: Final = (
    NOT_JSON,
    SCHEMA,
    TOO_LARGE,
    UNKNOWN_MODEL,
    BAD_TIMESTAMP,
    UNKNOWN_PREDICTION,
    CAPACITY,
)

_NAME = NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_VARIANTS = frozenset({"champion", "challenger", "shadow"})
_MAX_EPOCH = 32503680000.0  # year 3000
_SCALARS = (int, float, str, bool)


class Invalid(Exception):
    """A message that breaks the contract; ``reason`` is one of :data:`INVALID_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_not_future(event_time: float, now: float, max_future: float) -> None:
    """Refuse an event time more than ``max_future`` seconds after the wall clock ``now``.

    One event from a wrong clock would otherwise move the watermark past every real
    event of its model: it is an input error (``bad_timestamp``), counted and dead-lettered.
    """
    if event_time > now + max_future:
        raise Invalid(BAD_TIMESTAMP, f"timestamp {event_time!r} is {event_time - now:.0f} s ahead of the wall clock "
                                     f"(limits.max_future_seconds {max_future:g})")



def decode(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """Parse one message value into a JSON object, or raise :class:`Invalid`."""
    if raw is None:
        raise Invalid(NOT_JSON, "empty message (tombstone)")
    if len(raw) > max_bytes:
        raise Invalid(TOO_LARGE, f"{len(raw)} bytes > limit {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(NOT_JSON, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise Invalid(SCHEMA, f"top level must be an object, got {type(obj).__name__}")
    return obj


def parse_timestamp(value: Any) -> float:
    """Event time as epoch seconds from an RFC 3339 string or a number.

    >>> parse_timestamp("2026-01-01T00:00:00Z")
    1767225600.0
    >>> parse_timestamp(1767225600)
    1767225600.0
    """
    if isinstance(value, bool):
        raise Invalid(BAD_TIMESTAMP, "timestamp must be a number or an RFC 3339 string, got a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(BAD_TIMESTAMP, f"not an RFC 3339 time: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    else:
        raise Invalid(BAD_TIMESTAMP, f"timestamp must be a number or an RFC 3339 string, got {type(value).__name__}")
    if not (0.0 <= seconds <= _MAX_EPOCH):
        raise Invalid(BAD_TIMESTAMP, f"timestamp {seconds!r} outside 1970..3000")
    return seconds


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_name(obj: dict[str, Any], key: str, limit: int = 128) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(SCHEMA, f"{key!r} is required and must be a non-empty string")
    if len(value) > limit:
        raise Invalid(SCHEMA, f"{key!r} longer than {limit} characters")
    return value


def check_prediction(obj: dict[str, Any]) -> None:
    """Raise :class:`Invalid` when ``obj`` breaks ``schemas/prediction.v1.json``."""
    model = _check_name(obj, "model")
    if not _NAME.match(model):
        raise Invalid(SCHEMA, "'model' may hold only letters, digits, '_', '.', '-'")
    version = _check_name(obj, "model_version", 64)
    if not _NAME.match(version):
        raise Invalid(SCHEMA, "'model_version' may hold only letters, digits, '_', '.', '-'")
    _check_name(obj, "prediction_id")
    if "timestamp" not in obj:
        raise Invalid(SCHEMA, "'timestamp' is required")
    parse_timestamp(obj["timestamp"])
    features = obj.get("features")
    if not isinstance(features, dict):
        raise Invalid(SCHEMA, "'features' is required and must be an object")
    if len(features) > 1000:
        raise Invalid(SCHEMA, f"'features' has {len(features)} entries (max 1000)")
    for name, value in features.items():
        if value is not None and not isinstance(value, _SCALARS):
            raise Invalid(SCHEMA, f"feature {name[:64]!r} must be a number, string, boolean or null")
        if isinstance(value, float) and not math.isfinite(value):
            raise Invalid(SCHEMA, f"feature {name[:64]!r} is not finite")
    prediction = obj.get("prediction")
    if prediction is None or not isinstance(prediction, _SCALARS):
        raise Invalid(SCHEMA, "'prediction' is required and must be a number, string or boolean")
    if isinstance(prediction, float) and not math.isfinite(prediction):
        raise Invalid(SCHEMA, "'prediction' is not finite")
    scores = obj.get("scores")
    if scores is not None:
        if not isinstance(scores, dict) or len(scores) > 1000:
            raise Invalid(SCHEMA, "'scores' must be an object of class -> probability")
        for cls, p in scores.items():
            if not _is_number(p) or not 0.0 <= p <= 1.0:
                raise Invalid(SCHEMA, f"score of class {cls[:64]!r} must be a probability in [0, 1]")
    segment = obj.get("segment")
    if segment is not None:
        if not isinstance(segment, dict) or len(segment) > 8:
            raise Invalid(SCHEMA, "'segment' must be an object of at most 8 strings")
        for key, value in segment.items():
            if not isinstance(value, str) or len(value) > 64:
                raise Invalid(SCHEMA, f"segment {key[:64]!r} must be a string of at most 64 characters")
    variant = obj.get("variant")
    if variant is not None and (not isinstance(variant, str) or variant not in _VARIANTS):
        raise Invalid(SCHEMA, f"'variant' must be one of {sorted(_VARIANTS)}")
    latency = obj.get("latency_ms")
    if latency is not None and (not _is_number(latency) or latency < 0):
        raise Invalid(SCHEMA, "'latency_ms' must be a non-negative number")


def check_label(obj: dict[str, Any]) -> None:
    """Raise :class:`Invalid` when ``obj`` breaks ``schemas/label.v1.json``."""
    _check_name(obj, "prediction_id")
    label = obj.get("label")
    if label is None or not isinstance(label, _SCALARS):
        raise Invalid(SCHEMA, "'label' is required and must be a number, string or boolean")
    if isinstance(label, float) and not math.isfinite(label):
        raise Invalid(SCHEMA, "'label' is not finite")
    if "timestamp" not in obj:
        raise Invalid(SCHEMA, "'timestamp' is required")
    parse_timestamp(obj["timestamp"])
    if "model" in obj:
        _check_name(obj, "model")


def category_text(value: Any) -> str:
    """How a value reads as a category or class label: booleans ``true``/``false``, whole floats as integers.

    >>> category_text(True), category_text(1.0), category_text("a")
    ('true', '1', 'a')
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def segment_key(segment: dict[str, str] | None) -> str:
    """A canonical string for a segment map: ``""`` for none, else ``k=v`` pairs sorted by key.

    >>> segment_key({"region": "eu", "device": "ios"})
    'device=ios,region=eu'
    """
    if not segment:
        return ""
    items = tuple(segment.items())
    key = _SEGMENT_KEYS.get(items)
    if key is None:
        key = ",".join(f"{k}={segment[k]}" for k in sorted(segment))
        if len(_SEGMENT_KEYS) < 10_000:  # bounded: segments are low-cardinality by contract
            _SEGMENT_KEYS[items] = key
    return key


_SEGMENT_KEYS: dict[tuple[tuple[str, str], ...], str] = {}
