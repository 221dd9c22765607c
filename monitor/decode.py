"""From raw Kafka message values to columnar :class:`~monitor.batch.PredictionBatch` es.

One pass over the messages decodes JSON and checks the event contract on the fast
path (type checks on the fields driftd uses); a message that fails any check is
re-checked by :func:`monitor.events.check_prediction` to name the exact reason and
goes to the dead-letter list. Valid events are grouped per model version, and the
features the baseline knows are pulled into numpy columns.

Values of features that the baseline does not know are ignored, like any unknown
extra field: driftd never inspects them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from monitor import events
from monitor.batch import LabelBatch, PredictionBatch
from monitor.events import Invalid, category_text

__all__ = ["Columns", "DecodedPredictions", "Rejected", "columnarise", "decode_labels", "decode_predictions"]

_NAN = math.nan


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that breaks the contract: its index in the polled batch and why."""

    index: int
    reason: str
    detail: str


@dataclass(slots=True)
class _Group:
    ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    scores: list[dict[str, float] | None] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)


@dataclass(slots=True)
class DecodedPredictions:
    """Valid events grouped per (model, version), plus the rejected messages."""

    groups: dict[tuple[str, str], _Group]
    rejected: list[Rejected]


def decode_predictions(
    values: Sequence[bytes | None],
    positions: Sequence[int] | np.ndarray,
    max_bytes: int,
    known_model: Callable[[str], bool],
    max_future: float = math.inf,
) -> DecodedPredictions:
    """Decode and validate prediction messages.

    Parameters
    ----------
    values
        Raw message values.
    positions
        A unique, replay-stable position per message (``partition << 40 | offset``).
    known_model
        Whether a model name is configured; other models are rejected as
        ``unknown_model``.
    max_future
        Event times more than this many seconds after the wall clock are
        ``bad_timestamp`` (``limits.max_future_seconds``).
    """
    now = time.time()
    loads = orjson.loads
    groups: dict[tuple[str, str], _Group] = {}
    rejected: list[Rejected] = []
    segment_key = events.segment_key
    for index, raw in enumerate(values):
        try:
            if raw is None or len(raw) > max_bytes:
                events.decode(raw, max_bytes)  # raises with the precise reason
            obj = loads(raw)
            if type(obj) is not dict:
                raise Invalid(events.SCHEMA, "top level must be an object")
            model = obj.get("model")
            version = obj.get("model_version")
            pid = obj.get("prediction_id")
            timestamp = obj.get("timestamp")
            features = obj.get("features")
            prediction = obj.get("prediction")
            scores = obj.get("scores")
            segment = obj.get("segment")
            if (
                type(model) is not str or type(version) is not str or type(pid) is not str
                or type(features) is not dict or type(prediction) not in (int, float, str, bool)
                or (scores is not None and type(scores) is not dict)
                or not model or not version or not pid or len(pid) > 128 or len(version) > 64
                or (version not in _CHECKED_VERSIONS and not _remember_version(version))
            ):
                events.check_prediction(obj)
                raise Invalid(events.SCHEMA, "malformed event")  # pragma: no cover - check raises first
            if type(timestamp) is float or type(timestamp) is int:
                if not 0.0 <= timestamp <= 32503680000.0:
                    raise Invalid(events.BAD_TIMESTAMP, f"timestamp {timestamp!r} outside 1970..3000")
                event_time = float(timestamp)
            else:
                event_time = events.parse_timestamp(timestamp)
            if event_time > now + max_future:
                events.check_not_future(event_time, now, max_future)
            if segment is not None:
                known = None
                if type(segment) is dict:
                    try:
                        known = _SEGMENTS.get(tuple(segment.items()))
                    except TypeError:  # unhashable values: invalid, named below
                        known = None
                if known is None:
                    if type(segment) is not dict or len(segment) > 8 or any(
                        type(v) is not str or len(v) > 64 for v in segment.values()
                    ):
                        events.check_prediction(obj)
                    known = segment_key(segment)
                    if len(_SEGMENTS) < 10_000:  # valid segments are low-cardinality by contract
                        _SEGMENTS[tuple(segment.items())] = known
                segment = known
            else:
                segment = ""
            key = (model, version)
            group = groups.get(key)
            if group is None:
                if not known_model(model):
                    raise Invalid(events.UNKNOWN_MODEL, f"model {model[:128]!r} is not configured")
                events.check_prediction(obj)  # first event of a group: full check of the model name
                group = groups[key] = _Group()
            group.ids.append(pid)
            group.times.append(event_time)
            group.segments.append(segment)
            group.features.append(features)
            group.predictions.append(prediction)
            group.scores.append(scores)
            group.positions.append(positions[index])
            group.indices.append(index)
        except Invalid as exc:
            rejected.append(Rejected(index, exc.reason, exc.detail))
        except orjson.JSONDecodeError as exc:
            rejected.append(Rejected(index, events.NOT_JSON, str(exc)[:200]))
    return DecodedPredictions(groups, rejected)


_CHECKED_VERSIONS: set[str] = set()
_SEGMENTS: dict[tuple[tuple[str, str], ...], str] = {}


def _remember_version(version: str) -> bool:
    """Whether ``version`` is a safe name (it becomes a file name); valid ones are remembered (bounded)."""
    if not events.NAME.match(version):
        return False
    if len(_CHECKED_VERSIONS) < 100_000:
        _CHECKED_VERSIONS.add(version)
    return True


@dataclass(slots=True)
class Columns:
    """What a model version's layout needs pulled out of the feature maps."""

    numeric_names: list[str]
    categorical_names: list[str]
    positive_class: str
    numeric_prediction: bool
    # Multiclass: the score is the probability of the predicted class (top-label calibration).
    score_of_prediction: bool = False


_NUMBER_TYPES = frozenset({float, int, bool, type(None)})


def _numeric_matrix(rows: list[Sequence[Any]], width: int) -> tuple[np.ndarray, int]:
    """Rows of feature values to float64; wrong-typed values become NaN and are counted.

    Numbers and booleans are values, null is missing, anything else (a string, even
    "1.5", a list, an object) is a type error. The result never depends on which
    other events share the batch.
    """
    if _NUMBER_TYPES.issuperset(map(type, chain.from_iterable(rows))):
        try:
            return _finite(np.array(rows, dtype=np.float64).reshape(len(rows), width), 0)
        except OverflowError:  # an integer beyond float range: the slow path counts it
            pass
    errors = 0
    matrix = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is None:  # null: missing, not a type error
                matrix[i, j] = _NAN
                continue
            if type(value) in (int, float, bool):
                try:
                    matrix[i, j] = value
                    continue
                except OverflowError:
                    pass
            matrix[i, j] = _NAN
            errors += 1
    return _finite(matrix, errors)


def _finite(matrix: np.ndarray, errors: int) -> tuple[np.ndarray, int]:
    """Infinite values (1e400 decodes to inf) are not usable: NaN, counted as errors."""
    infinite = np.isinf(matrix)
    if infinite.any():  # 1e400 decodes to inf: not a usable value
        matrix[infinite] = _NAN
        errors += int(infinite.sum())
    return matrix, errors


_NESTED = frozenset({list, dict})


def _pull(features: list[dict[str, Any]], names: list[str], default: Any) -> list[Sequence[Any]]:
    """The values of ``names`` from every feature map, absent ones as ``default``.

    ``operator.itemgetter`` does the lookups in C when every event carries every
    name (the usual case); a batch with an absent name takes the ``get`` path.
    """
    if not names:
        return [()] * len(features)
    if len(names) > 1:
        getter = itemgetter(*names)
        try:
            return [getter(f) for f in features]
        except KeyError:
            pass
    return [[f.get(name, default) for name in names] for f in features]


def columnarise(model: str, version: str, group: _Group, columns: Columns) -> tuple[PredictionBatch, int]:
    """Turn one group of decoded events into a :class:`PredictionBatch`.

    Returns the batch and the number of feature values of the wrong type (treated as
    missing).
    """
    nan = _NAN
    numeric_names = columns.numeric_names
    # Absent features default to NaN here; explicit nulls take the slower path below.
    numeric_rows = _pull(group.features, numeric_names, nan)
    numeric, errors = _numeric_matrix(numeric_rows, len(numeric_names))
    categorical_names = columns.categorical_names
    categorical = np.empty((len(group.features), len(categorical_names)), dtype=object)
    if categorical_names and group.features:
        rows = _pull(group.features, categorical_names, None)
        if not _NESTED.isdisjoint(map(type, chain.from_iterable(rows))):
            # Lists or objects where a category belongs: type errors, treated as missing.
            clean = [[None if isinstance(v, (list, dict)) else v for v in row] for row in rows]
            errors += sum(isinstance(v, (list, dict)) for row in rows for v in row)
            rows = clean
        categorical[:] = rows
    positive = columns.positive_class
    if any(s is not None for s in group.scores):
        if columns.score_of_prediction:
            scores = np.array([nan if s is None else s.get(category_text(p), nan) for s, p in zip(group.scores, group.predictions)], dtype=np.float64)
        else:
            scores = np.array([nan if s is None else s.get(positive, nan) for s in group.scores], dtype=np.float64)
        # Out-of-range probabilities are contract violations caught by the validator; clip defensively.
        scores[(scores < 0) | (scores > 1)] = nan
    else:
        scores = None
    if columns.numeric_prediction:
        predictions, bad = _numeric_matrix([[p] for p in group.predictions], 1)
        predictions = predictions[:, 0]
        errors += bad
    else:
        predictions = np.array([category_text(p) for p in group.predictions], dtype=object)
    batch = PredictionBatch(
        model=model,
        version=version,
        prediction_ids=group.ids,
        event_times=np.array(group.times, dtype=np.float64),
        segments=group.segments,
        numeric_names=numeric_names,
        numeric=numeric,
        categorical_names=categorical_names,
        categorical=categorical,
        predictions=predictions,
        scores=scores,
        offsets=np.array(group.positions, dtype=np.int64),
    )
    return batch, errors



def decode_labels(values: Sequence[bytes | None], max_bytes: int, max_future: float = math.inf) -> tuple[LabelBatch, list[Rejected]]:
    """Decode and validate label messages (times past ``max_future`` are ``bad_timestamp``)."""
    now = time.time()
    ids: list[str] = []
    labels: list[Any] = []
    times: list[float] = []
    models: list[str | None] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(values):
        try:
            obj = events.decode(raw, max_bytes)
            events.check_label(obj)
            event_time = events.parse_timestamp(obj["timestamp"])
            events.check_not_future(event_time, now, max_future)
        except Invalid as exc:
            rejected.append(Rejected(index, exc.reason, exc.detail))
            continue
        ids.append(obj["prediction_id"])
        labels.append(obj["label"])
        times.append(event_time)
        models.append(obj.get("model"))
    return LabelBatch(ids, labels, np.array(times, dtype=np.float64), models), rejected
