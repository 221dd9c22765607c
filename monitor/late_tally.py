"""Late events per (model, version, segment), handed to the key's next closed window.

An event behind the watermark belongs to a window that has already closed, so it
is excluded and counted (``driftd_late_events_total``). :class:`LateTally` also
keeps the count per key until that key's next window closes; the pipeline puts it
in :attr:`WindowReport.n_late <monitor.results.WindowReport>` and the store keeps
it, so that the app can name late-heavy streams from the store alone.

Bounded by the number of keys (themselves capped by ``limits``); a key beyond
``max_keys`` is counted under no key and only in the metric.

>>> import numpy as np
>>> from types import SimpleNamespace
>>> tally = LateTally()
>>> batch = SimpleNamespace(model="m", version="1", segments=["", "eu", "eu"])
>>> tally.add(batch, np.array([False, True, True]))
>>> tally.take(("m", "1", "eu")), tally.take(("m", "1", "eu")), tally.take(("m", "1", ""))
(2, 0, 0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from monitor.batch import PredictionBatch
from monitor.decode import Rejected
from monitor.events import LATE

__all__ = ["LateTally", "late_rejects"]


class LateTally:
    """Late-event counts per window key since the key's last window closed."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, batch: Any, late: np.ndarray) -> None:
        """Count the rows of ``batch`` (a PredictionBatch) flagged in the boolean ``late``."""
        rows = np.flatnonzero(late)
        if not rows.size:
            return
        for segment, n in Counter(batch.segments[i] for i in rows).items():
            key = (batch.model, batch.version, segment)
            if key in self._counts or len(self._counts) < self.max_keys:
                self._counts[key] += n

    def take(self, key: tuple[str, str, str]) -> int:
        """The count of ``key`` since the last take, reset to 0."""
        return int(self._counts.pop(tuple(key), 0))  # type: ignore[arg-type]


def late_rejects(batch: PredictionBatch, late: np.ndarray, indices: Sequence[int], size: float,
                 watermark: float) -> list[Rejected]:
    """Late rows as dead letters (reason ``late``) naming their window, so they can be replayed."""
    rows = np.flatnonzero(late)
    if len(rows) == 0:
        return []
    starts = np.floor(batch.event_times[rows] / size) * size
    return [
        Rejected(indices[row], LATE,
                 f"{batch.model} {batch.version} window {start:.0f}-{start + size:.0f} already closed "
                 f"(event time {batch.event_times[row]:.3f}, watermark {watermark:.3f})")
        for row, start in zip(rows.tolist(), starts.tolist(), strict=True)
    ]
