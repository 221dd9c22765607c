"""Columnar batches: how decoded events travel between the consumer and pure code.

The consumer decodes a polled batch of messages once and groups it per model
version into a :class:`PredictionBatch`; window aggregation, the label join and the
explanation sampler all work on these columns with numpy, never per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PredictionBatch", "LabelBatch"]


@dataclass(slots=True)
class PredictionBatch:
    """Predictions of one model version, one row per event.

    Attributes
    ----------
    model, version
        The model and model version every row belongs to.
    prediction_ids
        ``prediction_id`` of each row.
    event_times
        Event time of each row, epoch seconds (float64).
    segments
        Canonical segment key of each row (``""`` when none), see
        :func:`monitor.events.segment_key`.
    numeric_names, numeric
        Names of the numeric features and their values, shape (rows, len(names)),
        float64 with NaN where missing.
    categorical_names, categorical
        Names of the categorical features and their raw values, shape
        (rows, len(names)), dtype object, ``None`` where missing.
    predictions
        The prediction of each row, float64 for regression and binary scores-as-
        predictions, else object (class labels as strings).
    scores
        Probability of the positive class for binary classifiers (float64, NaN when
        the event had no scores), or None when no event of the batch had scores.
    offsets
        Kafka position of each row as ``partition << 40 | offset`` (int64), or a
        running sequence in-process; used to derive deterministic sample keys.
    """

    model: str
    version: str
    prediction_ids: list[str]
    event_times: np.ndarray
    segments: list[str]
    numeric_names: list[str]
    numeric: np.ndarray
    categorical_names: list[str]
    categorical: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray | None = None
    offsets: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.prediction_ids)

    def take(self, rows: np.ndarray) -> PredictionBatch:
        """The sub-batch of the given row indices (or boolean mask)."""
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows
        return PredictionBatch(
            model=self.model,
            version=self.version,
            prediction_ids=[self.prediction_ids[i] for i in idx],
            event_times=self.event_times[idx],
            segments=[self.segments[i] for i in idx],
            numeric_names=self.numeric_names,
            numeric=self.numeric[idx],
            categorical_names=self.categorical_names,
            categorical=self.categorical[idx],
            predictions=self.predictions[idx],
            scores=None if self.scores is None else self.scores[idx],
            offsets=self.offsets[idx] if len(self.offsets) else self.offsets,
        )

    def feature_row(self, i: int) -> dict[str, object]:
        """Row ``i`` as a feature map (NaN/None kept), e.g. for an explanation record."""
        row: dict[str, object] = {}
        for j, name in enumerate(self.numeric_names):
            value = float(self.numeric[i, j])
            row[name] = None if np.isnan(value) else value
        for j, name in enumerate(self.categorical_names):
            row[name] = self.categorical[i, j]
        return row


@dataclass(slots=True)
class LabelBatch:
    """Validated label events, one row per event."""

    prediction_ids: list[str]
    labels: list[object]
    event_times: np.ndarray
    models: list[str | None]

    def __len__(self) -> int:
        return len(self.prediction_ids)
