"""A bounded cache of recent predictions, so that ones later found wrong can be explained.

Labels arrive minutes to days after their prediction, and the label join does not
keep feature values. :class:`RecentRows` keeps the last ``capacity`` predictions of
one model in a ring buffer of numpy columns (a fixed amount of memory: capacity ×
features), looked up by prediction-id hash. A prediction that has left the ring
before its label arrived cannot be explained as "wrong"; the service counts it as
``explain_dropped{reason="not_cached"}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.batch import PredictionBatch

__all__ = ["RecentRows"]


class RecentRows:
    """Ring buffer of the last ``capacity`` rows offered for one model.

    The layout (feature names) is taken from the first batch; a batch with other
    feature columns resets the ring (a new schema makes older rows unusable).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._layout: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._position = 0

    def _reset(self, batch: PredictionBatch) -> None:
        size = self.capacity
        self._layout = (tuple(batch.numeric_names), tuple(batch.categorical_names))
        self._position = 0
        self.hashes = np.zeros(size, dtype=np.uint64)
        self.valid = np.zeros(size, dtype=bool)
        self.explained = np.zeros(size, dtype=bool)
        self.ids = np.empty(size, dtype=object)
        self.versions = np.empty(size, dtype=object)
        self.segments = np.empty(size, dtype=object)
        self.event_times = np.zeros(size)
        self.window_starts = np.zeros(size)
        self.numeric = np.full((size, len(batch.numeric_names)), np.nan)
        self.categorical = np.empty((size, len(batch.categorical_names)), dtype=object)
        self.predictions = np.empty(size, dtype=object)
        self.scores = np.full(size, np.nan)

    def __len__(self) -> int:
        return 0 if self._layout is None else int(self.valid.sum())

    def add(self, batch: PredictionBatch, window_starts: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Remember the rows of ``batch``; returns the ring slot of each row (-1 if not kept)."""
        n = len(batch)
        slots = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return slots
        if self._layout != (tuple(batch.numeric_names), tuple(batch.categorical_names)):
            self._reset(batch)
        keep = np.arange(max(0, n - self.capacity), n)  # only the newest rows fit
        where = (self._position + np.arange(len(keep))) % self.capacity
        self._position = int((self._position + len(keep)) % self.capacity)
        self.hashes[where] = hashes[keep]
        self.valid[where] = True
        self.explained[where] = False
        self.ids[where] = np.asarray(batch.prediction_ids, dtype=object)[keep]
        self.versions[where] = batch.version
        self.segments[where] = np.asarray(batch.segments, dtype=object)[keep]
        self.event_times[where] = batch.event_times[keep]
        self.window_starts[where] = np.asarray(window_starts, dtype=np.float64)[keep]
        self.numeric[where] = batch.numeric[keep]
        self.categorical[where] = batch.categorical[keep]
        self.predictions[where] = np.asarray(batch.predictions, dtype=object)[keep]
        self.scores[where] = np.nan if batch.scores is None else batch.scores[keep]
        slots[keep] = where
        return slots

    def mark_explained(self, slots: np.ndarray) -> None:
        """Rows already explained are not explained again when found wrong."""
        slots = slots[slots >= 0]
        if self._layout is not None and len(slots):
            self.explained[slots] = True

    def find(
        self, model: str, prediction_ids: Sequence[str], hashes: np.ndarray
    ) -> tuple[list[tuple[PredictionBatch, np.ndarray, np.ndarray]], int, int]:
        """The cached rows of these predictions, grouped by model version.

        Returns
        -------
        groups
            ``(batch, window_starts, slots)`` per version, rows not yet explained.
        already
            Predictions found but already explained.
        found
            Predictions found at all.
        """
        if self._layout is None or len(hashes) == 0:
            return [], 0, 0
        candidates = np.flatnonzero(self.valid & np.isin(self.hashes, hashes))
        wanted = set(prediction_ids)
        # A 64-bit hash collision is astronomically unlikely, but the id check is cheap.
        candidates = np.array([s for s in candidates if self.ids[s] in wanted], dtype=np.int64)
        if len(candidates) == 0:
            return [], 0, 0
        fresh = candidates[~self.explained[candidates]]
        groups = []
        for version in sorted(set(self.versions[fresh])):
            slots = fresh[self.versions[fresh] == version]
            scores = self.scores[slots]
            batch = PredictionBatch(
                model=model,
                version=version,
                prediction_ids=list(self.ids[slots]),
                event_times=self.event_times[slots].copy(),
                segments=list(self.segments[slots]),
                numeric_names=list(self._layout[0]),
                numeric=self.numeric[slots].copy(),
                categorical_names=list(self._layout[1]),
                categorical=self.categorical[slots].copy(),
                predictions=self.predictions[slots].copy(),
                scores=None if np.isnan(scores).all() else scores.copy(),
            )
            groups.append((batch, self.window_starts[slots].copy(), slots))
        return groups, len(candidates) - len(fresh), len(candidates)
