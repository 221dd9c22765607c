"""Explanation tasks on Kafka: the message format between the daemon and explain-workers.

A task is JSON (orjson), never pickle: whoever can write to the topic must not be
able to run code in the workers. One message holds up to ``task_rows`` rows of one
model::

    {"v": 1, "task_id": "9f1c…", "model": "credit", "created_at_us": 1767225600123456,
     "chunks": [{"version": "v1", "prediction_ids": [...], "event_times": [...],
                 "segments": [...], "window_starts": [...], "reasons": [1, 4, ...],
                 "numeric_names": [...], "numeric": [[...], ...],
                 "categorical_names": [...], "categorical": [[...], ...],
                 "predictions": [...], "numeric_predictions": true, "scores": [...] | null}]}

``created_at_us`` (microseconds since the epoch, fixed when the daemon publishes)
becomes the ``created_at`` of every explanation of the task, so that a task
redelivered to another worker writes the same keys and is stored once. Missing
numbers travel as ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from explainers.errors import ExplainError
from explainers.rows import Chunk
from explainers.sampling import REASONS
from monitor.batch import PredictionBatch

__all__ = ["DecodedTask", "TaskFormatError", "decode_task", "encode_task"]

FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TaskFormatError(ExplainError):
    """A task message that is not a task of this format (counted as ``bad_task``)."""


@dataclass(frozen=True, slots=True)
class DecodedTask:
    """A task as a worker runs it."""

    task_id: str
    model: str
    created_at: datetime
    chunks: list[Chunk]

    @property
    def rows(self) -> int:
        return sum(len(batch) for batch, _, _ in self.chunks)


def _floats(values: np.ndarray) -> list:
    # NaN is not JSON: orjson writes it as null, which decodes back to NaN below.
    return np.asarray(values, dtype=np.float64).tolist()


def encode_task(task_id: str, model: str, created_at_us: int, chunks: list[Chunk]) -> bytes:
    """The message value of one task.

    >>> from monitor.batch import PredictionBatch
    >>> batch = PredictionBatch("m", "v1", ["p1"], np.array([10.0]), [""], ["x"], np.array([[np.nan]]),
    ...                         [], np.empty((1, 0), dtype=object), np.array([1.0]))
    >>> task = decode_task(encode_task("t1", "m", 5, [(batch, np.array([0.0]), np.array([1]))]))
    >>> task.task_id, task.created_at.microsecond, task.chunks[0][0].numeric.tolist()
    ('t1', 5, [[nan]])
    """
    encoded = []
    for batch, window_starts, reasons in chunks:
        numeric_predictions = batch.predictions.dtype != object
        encoded.append({
            "version": batch.version,
            "prediction_ids": list(batch.prediction_ids),
            "event_times": _floats(batch.event_times),
            "segments": list(batch.segments),
            "window_starts": _floats(window_starts),
            "reasons": np.asarray(reasons, dtype=np.int64).tolist(),
            "numeric_names": list(batch.numeric_names),
            "numeric": _floats(batch.numeric),
            "categorical_names": list(batch.categorical_names),
            "categorical": batch.categorical.tolist(),
            "predictions": _floats(batch.predictions) if numeric_predictions else batch.predictions.tolist(),
            "numeric_predictions": bool(numeric_predictions),
            "scores": None if batch.scores is None else _floats(batch.scores),
        })
    task = {"v": FORMAT_VERSION, "task_id": task_id, "model": model, "created_at_us": int(created_at_us),
            "chunks": encoded}
    return orjson.dumps(task)


def _chunk(raw: dict[str, Any], model: str) -> Chunk:
    ids = [str(p) for p in raw["prediction_ids"]]
    n = len(ids)
    numeric_names = [str(x) for x in raw["numeric_names"]]
    categorical_names = [str(x) for x in raw["categorical_names"]]
    numeric = np.array(raw["numeric"], dtype=np.float64).reshape(n, len(numeric_names))
    categorical = np.empty((n, len(categorical_names)), dtype=object)
    if n and categorical_names:
        categorical[:] = raw["categorical"]
    predictions = np.array(raw["predictions"], dtype=np.float64 if raw["numeric_predictions"] else object)
    scores = None if raw["scores"] is None else np.array(raw["scores"], dtype=np.float64)
    window_starts = np.array(raw["window_starts"], dtype=np.float64)
    reasons = np.array(raw["reasons"], dtype=np.int8)
    event_times = np.array(raw["event_times"], dtype=np.float64)
    segments = [str(s) for s in raw["segments"]]
    lengths = {len(event_times), len(segments), len(window_starts), len(reasons), len(predictions)}
    if scores is not None:
        lengths.add(len(scores))
    if lengths != {n}:
        raise TaskFormatError(f"columns of unequal length in a chunk of {n} rows")
    if len(reasons) and (reasons.min() < 1 or reasons.max() >= len(REASONS)):
        raise TaskFormatError(f"reason codes must be 1..{len(REASONS) - 1}")
    batch = PredictionBatch(
        model=model, version=str(raw["version"]), prediction_ids=ids, event_times=event_times,
        segments=segments, numeric_names=numeric_names, numeric=numeric,
        categorical_names=categorical_names, categorical=categorical, predictions=predictions, scores=scores,
    )
    return batch, window_starts, reasons


def decode_task(value: bytes | None) -> DecodedTask:
    """A task from its message value.

    Raises
    ------
    TaskFormatError
        When the value is not a task of this format (the message names what is wrong).
    """
    if value is None:
        raise TaskFormatError("empty message")
    try:
        raw = orjson.loads(value)
        if not isinstance(raw, dict) or raw.get("v") != FORMAT_VERSION:
            version = raw.get("v") if isinstance(raw, dict) else None
            raise TaskFormatError(f"not a task of format {FORMAT_VERSION} (v={version!r})")
        model = str(raw["model"])
        created_at = _EPOCH + timedelta(microseconds=int(raw["created_at_us"]))
        chunks = [_chunk(chunk, model) for chunk in raw["chunks"]]
        task_id = str(raw["task_id"])
    except TaskFormatError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise TaskFormatError(f"malformed task: {type(exc).__name__}: {exc}") from None
    if not task_id or len(task_id) > 64:
        raise TaskFormatError(f"task_id must be 1 to 64 characters, got {task_id!r}")
    return DecodedTask(task_id, model, created_at, chunks)
