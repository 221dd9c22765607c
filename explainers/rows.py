"""Explanation rows and per-window |SHAP| sums, built where the SHAP values are.

A worker task carries *chunks*: rows of one batch (a :class:`PredictionBatch`), the
event-time window start of each row and the reason it was picked (a code of
:data:`explainers.sampling.REASONS`). From the SHAP values of a task the worker
builds one store row per prediction (:func:`explanation_rows`) and, for attribution
drift, the sum of |SHAP| per feature of each window it touched
(:func:`window_sums`), so that the daemon receives a few vectors per task instead
of a dict per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers.sampling import REASONS
from monitor.batch import PredictionBatch

__all__ = ["Chunk", "WindowSum", "explanation_rows", "group_sums", "window_sums"]

# Rows of one batch, their window starts and their reason codes.
Chunk = tuple[PredictionBatch, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class WindowSum:
    """Sum of |SHAP| per feature over one window's explained rows."""

    version: str
    segment: str
    window_start: float
    count: int
    abs_shap: np.ndarray


def group_sums(
    segments: Sequence[str], window_starts: np.ndarray, magnitudes: np.ndarray
) -> dict[tuple[str, float], tuple[np.ndarray, int]]:
    """|SHAP| rows summed per (segment, window start), with the row count.

    >>> sums = group_sums(["", "", "eu"], np.array([0.0, 0.0, 0.0]), np.array([[1.0], [2.0], [4.0]]))
    >>> {key: (total.tolist(), count) for key, (total, count) in sums.items()}
    {('', 0.0): ([3.0], 2), ('eu', 0.0): ([4.0], 1)}
    """
    groups: dict[tuple[str, float], list[int]] = {}
    for row, key in enumerate(zip(segments, np.asarray(window_starts, dtype=np.float64).tolist())):
        groups.setdefault(key, []).append(row)
    return {key: (magnitudes[rows].sum(axis=0), len(rows)) for key, rows in groups.items()}


def window_sums(chunks: Sequence[Chunk], values: np.ndarray) -> list[WindowSum]:
    """Per-window |SHAP| sums of a task's rows (``values`` in chunk order)."""
    totals: dict[tuple[str, str, float], tuple[np.ndarray, int]] = {}
    offset = 0
    for batch, window_starts, _ in chunks:
        n = len(batch)
        magnitudes = np.abs(values[offset: offset + n])
        offset += n
        for (segment, start), (total, count) in group_sums(batch.segments, window_starts, magnitudes).items():
            key = (batch.version, segment, start)
            if key in totals:
                previous, seen = totals[key]
                total, count = previous + total, seen + count
            totals[key] = (total, count)
    return [WindowSum(v, s, start, count, total) for (v, s, start), (total, count) in totals.items()]


def explanation_rows(
    chunks: Sequence[Chunk],
    feature_names: Sequence[str],
    values: np.ndarray,
    base_values: np.ndarray,
    outputs: np.ndarray,
    explainer: str,
    background_hash: str,
    duration_ms: float,
) -> list[dict[str, Any]]:
    """One ``explanations`` row (see :meth:`monitor.store.Store.add_explanations`) per explained row."""
    names = list(feature_names)
    rows: list[dict[str, Any]] = []
    offset = 0
    for batch, window_starts, reasons in chunks:
        n = len(batch)
        shap = values[offset: offset + n].tolist()
        base = base_values[offset: offset + n].tolist()
        output = outputs[offset: offset + n]
        offset += n
        event_times = batch.event_times.tolist()
        starts = np.asarray(window_starts, dtype=np.float64).tolist()
        for i in range(n):
            rows.append({
                "prediction_id": batch.prediction_ids[i],
                "model": batch.model,
                "version": batch.version,
                "segment": batch.segments[i],
                "event_time": event_times[i],
                "window_start": starts[i],
                "features": batch.feature_row(i),
                "prediction": prediction_value(batch, i, output[i]),
                "base_value": base[i],
                "shap_values": dict(zip(names, shap[i])),
                "explainer": explainer,
                "background_hash": background_hash,
                "duration_ms": duration_ms,
                "reason": REASONS[int(reasons[i])],
            })
    return rows


def prediction_value(batch: PredictionBatch, i: int, output: float) -> float:
    """The logged prediction as a number; else the score; else the explained output."""
    try:
        return float(batch.predictions[i])
    except (TypeError, ValueError):
        if batch.scores is not None and np.isfinite(batch.scores[i]):
            return float(batch.scores[i])
        return float(output)
