"""A bounded cache of recent predictions, so that ones later found wrong can be explained.

Labels arrive minutes to days after their prediction, and the label join does not
keep feature values. :class:`RecentRows` keeps references to the last batches
offered for one model, up to ``capacity`` rows (plus at most one batch): nothing
is copied or computed on the ingest path. Lookups are ``np.isin`` over the
prediction-id hashes: the ones the sampler computed, else computed at the first
lookup (once per batch). A prediction that has left the cache before its label
arrived cannot be explained as "wrong"; the service counts it as
``explain_dropped{reason="not_cached"}``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explainers.sampling import id_hashes
from monitor.batch import PredictionBatch

__all__ = ["RecentRows"]


@dataclass(slots=True)
class _Entry:
    batch: PredictionBatch
    window_starts: np.ndarray
    hashes: np.ndarray | None  # computed at the first lookup when the sampler did not need them
    explained: np.ndarray  # bool per row


class RecentRows:
    """The last ``capacity`` rows offered for one model (whole batches, oldest evicted).

    The cached batches must not be modified afterwards (the consumer builds a new
    batch for every poll).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._entries: deque[_Entry] = deque()
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, batch: PredictionBatch, window_starts: np.ndarray, hashes: np.ndarray | None = None) -> _Entry | None:
        """Remember ``batch`` (with its id hashes when known); returns the handle to mark rows explained with."""
        if len(batch) == 0:
            return None
        entry = _Entry(batch, np.asarray(window_starts, dtype=np.float64), hashes, np.zeros(len(batch), dtype=bool))
        self._entries.append(entry)
        self._rows += len(batch)
        while self._rows - len(self._entries[0].batch) >= self.capacity:
            self._rows -= len(self._entries.popleft().batch)
        return entry

    @staticmethod
    def mark_explained(entry: _Entry | None, rows: np.ndarray) -> None:
        """Rows already explained are not explained again when found wrong."""
        if entry is not None and len(rows):
            entry.explained[rows] = True

    def find(
        self, model: str, prediction_ids: Sequence[str], hashes: np.ndarray
    ) -> tuple[list[tuple[PredictionBatch, np.ndarray, _Entry, np.ndarray]], int, int]:
        """The cached rows of these predictions, one group per cached batch.

        Returns
        -------
        groups
            ``(rows as a batch, their window starts, entry, row indices)`` for rows not
            yet explained.
        already
            Predictions found but already explained.
        found
            Predictions found at all.
        """
        wanted = set(prediction_ids)
        groups = []
        found = already = 0
        for entry in self._entries:
            if entry.hashes is None:
                entry.hashes = id_hashes(entry.batch.prediction_ids)
            rows = np.flatnonzero(np.isin(entry.hashes, hashes))
            # A 64-bit hash collision is astronomically unlikely, but the id check is cheap.
            rows = np.array([r for r in rows if entry.batch.prediction_ids[r] in wanted], dtype=np.int64)
            if len(rows) == 0:
                continue
            found += len(rows)
            fresh = rows[~entry.explained[rows]]
            already += len(rows) - len(fresh)
            if len(fresh):
                groups.append((entry.batch.take(fresh), entry.window_starts[fresh], entry, fresh))
        return groups, already, found
