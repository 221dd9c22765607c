"""The bounded store of predictions waiting for their label.

Columns of numbers in numpy arrays (one slot per prediction) plus one dict entry
per ``prediction_id`` in insertion order, which is close to event-time order: the
oldest entries are evicted first, by TTL or by the capacity cap. Freed slots are
reused, so memory stays at the high-water mark of ``max_pending``.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "PendingPredictions"]

#: What is kept per pending prediction.
COLUMNS: dict[str, Any] = {
    "key": np.int64,  # interned (model, version, segment)
    "window": np.float64,  # start of the prediction's window
    "time": np.float64,  # the prediction's event time
    "prediction": np.float64,  # regression value, binary positive flag, or multiclass class id
    "score": np.float64,  # P(positive) or top-label confidence, NaN when unknown
}


class PendingPredictions:
    """Pending predictions by id, at most ``max_pending``.

    Parameters
    ----------
    max_pending
        Capacity; inserting past it evicts the oldest entries.
    """

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self._slot_of: OrderedDict[str, int] = OrderedDict()
        self._free: list[int] = []
        self._columns = {name: np.empty(0, dtype) for name, dtype in COLUMNS.items()}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, prediction_id: str) -> bool:
        return prediction_id in self._slot_of

    def _allocate(self, n: int) -> np.ndarray:
        """Slots for ``n`` new entries, growing the columns by doubling."""
        taken = self._free[-n:] if 0 < n <= len(self._free) else (list(self._free) if n else [])
        del self._free[len(self._free) - len(taken):]
        missing = n - len(taken)
        if missing:
            size = len(self._columns["time"])
            grown = max(1024, size * 2, size + missing)
            for name, column in self._columns.items():
                bigger = np.empty(grown, column.dtype)
                bigger[:size] = column
                self._columns[name] = bigger
            self._free.extend(range(grown - 1, size + missing - 1, -1))
            taken.extend(range(size, size + missing))
        return np.asarray(taken, dtype=np.int64)

    def insert(self, ids: list[str], rows: list[int], values: dict[str, np.ndarray]) -> int:
        """Insert ``ids[r]`` for each row ``r`` with ``values[column][r]``.

        Rows must hold ids that are not pending yet. Returns how many entries were
        evicted (oldest first, the batch's own oldest rows included) to stay within
        capacity.
        """
        evicted = 0
        if len(rows) > self.max_pending:
            evicted += len(rows) - self.max_pending
            rows = rows[-self.max_pending:]
        overflow = len(self._slot_of) + len(rows) - self.max_pending
        for _ in range(max(0, overflow)):
            self._free.append(self._slot_of.popitem(last=False)[1])
        evicted += max(0, overflow)
        index = np.asarray(rows, dtype=np.int64)
        slots = self._allocate(len(index))
        for name in COLUMNS:
            self._columns[name][slots] = values[name][index]
        self._slot_of.update(zip((ids[r] for r in rows), slots.tolist()))
        return evicted

    def pop(self, prediction_id: str) -> int | None:
        """Remove an entry; its slot (read it with :meth:`take`, then :meth:`release`)."""
        return self._slot_of.pop(prediction_id, None)

    def take(self, slots: list[int]) -> dict[str, np.ndarray]:
        """The columns of popped slots, and the slots back to the free list."""
        index = np.asarray(slots, dtype=np.int64)
        values = {name: column[index] for name, column in self._columns.items()}
        self._free.extend(slots)
        return values

    def expire(self, horizon: float) -> int:
        """Evict entries whose event time is before ``horizon``; how many were evicted.

        Scans from the oldest insertion and stops at the first entry still in time,
        so an out-of-order entry waits behind older ones (bounded by capacity).
        """
        times = self._columns["time"]
        expired = 0
        while self._slot_of:
            slot = next(iter(self._slot_of.values()))
            if times[slot] >= horizon:
                break
            self._free.append(self._slot_of.popitem(last=False)[1])
            expired += 1
        return expired

    def to_state(self) -> dict[str, Any]:
        """Ids in insertion order and each column as base64 of little-endian raw values
        (compact for a million entries, NaN-safe, no pickle)."""
        ids = list(self._slot_of)
        slots = np.fromiter(self._slot_of.values(), np.int64, len(ids))
        columns = {
            name: base64.b64encode(self._columns[name][slots].astype(np.dtype(dtype).newbyteorder("<")).tobytes()).decode()
            for name, dtype in COLUMNS.items()
        }
        return {"ids": ids, "columns": columns}

    @classmethod
    def from_state(cls, state: dict[str, Any], max_pending: int) -> PendingPredictions:
        store = cls(max_pending)
        ids = state["ids"]
        values = {
            name: np.frombuffer(base64.b64decode(state["columns"][name]), np.dtype(dtype).newbyteorder("<")).astype(dtype)
            for name, dtype in COLUMNS.items()
        }
        if any(len(v) != len(ids) for v in values.values()):
            raise ValueError("pending-prediction state is corrupt: column lengths differ from the ids")
        store.insert(ids, list(range(len(ids))), values)
        return store
