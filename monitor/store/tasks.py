"""Explanation tasks of ``driftd explain-worker``: written once, and |SHAP| sums per window.

An explain-worker receives tasks from Kafka *at least once* (a task is redelivered
when its worker died before committing its offset). :func:`add_explanation_task`
makes the write idempotent: in one transaction it inserts the task's row into
``explanation_tasks`` (primary key: the task id); only if that row is new does it
insert the explanations and add the task's |SHAP| sums to ``attribution_sums``.
A redelivered task thus writes nothing, however often it is redone; two workers
racing on the same task serialise on the task row's key.

The daemon reads the sums of the windows it reports on with :func:`window_sums`:
one row per (model, version, segment, window, feature), so the read is
O(windows × features) whatever the traffic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from monitor.store.explanations import explanation_values
from monitor.store.schema import AttributionSumRow, ExplanationRow, ExplanationTaskRow
from monitor.store.windows import to_datetime

__all__ = ["TaskSum", "add_explanation_task", "apply_task_retention", "window_sums"]

_T = ExplanationTaskRow.__table__
_S = AttributionSumRow.__table__
_E = ExplanationRow.__table__
# Bound parameters per IN (...) list.
_IN_CHUNK = 500

WindowId = tuple[str, str, str, float]
# (model, version, segment, window start) -> (feature names, |SHAP| sums, explanations)
TaskSum = tuple[WindowId, Sequence[str], np.ndarray, int]


def add_explanation_task(
    store: Any,
    task_id: str,
    model: str,
    worker: str,
    created_at: datetime,
    rows: Sequence[Mapping[str, Any]],
    sums: Iterable[TaskSum],
) -> int:
    """Write one task's explanations and |SHAP| sums once; returns the rows written.

    0 means the task was already stored (a redelivery): nothing is written. Every
    explanation gets ``created_at`` (the task's), so the explanations' own unique key
    (prediction id, created_at) holds too.

    Raises
    ------
    StoreError
        The database refused or could not be reached (nothing is written).
    """
    now = to_datetime(datetime.now().astimezone())
    values = [explanation_values({**row, "created_at": created_at}, i, now) for i, row in enumerate(rows)]
    adds = [
        {"model": m, "version": v, "segment": s, "window_start": to_datetime(start), "feature": str(name),
         "abs_shap_sum": float(total), "n": int(count)}
        for (m, v, s, start), names, totals, count in sums
        for name, total in zip(names, np.asarray(totals, dtype=np.float64).tolist())
    ]
    # One order for every writer, so two transactions adding to the same windows
    # take their row locks in the same order (no deadlock on PostgreSQL).
    adds.sort(key=lambda a: (a["model"], a["version"], a["segment"], a["window_start"], a["feature"]))
    task = store._upsert(_T).values(
        task_id=task_id, model=model, rows=len(values), worker=worker, created_at=created_at, stored_at=now,
    ).on_conflict_do_nothing(index_elements=["task_id"]).returning(_T.c.task_id)
    with store.transaction("add_explanation_task", write=True) as session:
        connection = session.connection()
        if connection.execute(task).first() is None:
            return 0  # redelivered: its rows and sums are already stored
        if values:
            insert = store._upsert(_E).on_conflict_do_nothing(index_elements=["prediction_id", "created_at"])
            connection.execute(insert, values)
        if adds:
            upsert = store._upsert(_S)
            upsert = upsert.on_conflict_do_update(
                index_elements=["model", "version", "segment", "window_start", "feature"],
                set_={"abs_shap_sum": _S.c.abs_shap_sum + upsert.excluded.abs_shap_sum,
                      "n": _S.c.n + upsert.excluded.n},
            )
            for add in adds:  # one statement per row: the order above is the lock order
                connection.execute(upsert.values(**add))
    return len(values)


def window_sums(store: Any, windows: Iterable[WindowId]) -> dict[WindowId, tuple[list[str], np.ndarray, int]]:
    """|SHAP| sums of the given windows: feature names, sums, and explanations counted."""
    wanted = {(m, v, s, float(start)) for m, v, s, start in windows}
    by_start: dict[float, set[str]] = defaultdict(set)
    for m, _, _, start in wanted:
        by_start[start].add(m)
    found: dict[WindowId, tuple[list[str], list[float], int]] = {}
    starts = sorted(by_start)
    with store.transaction("window_sums") as session:
        for first in range(0, len(starts), _IN_CHUNK):
            chunk = [to_datetime(s) for s in starts[first:first + _IN_CHUNK]]
            query = select(_S.c.model, _S.c.version, _S.c.segment, _S.c.window_start, _S.c.feature,
                           _S.c.abs_shap_sum, _S.c.n).where(_S.c.window_start.in_(chunk)).order_by(_S.c.feature)
            for model, version, segment, start, feature, total, n in session.execute(query):
                key = (model, version, segment, start.timestamp())
                if key not in wanted:
                    continue
                names, totals, count = found.setdefault(key, ([], [], 0))
                names.append(feature)
                totals.append(total)
                found[key] = (names, totals, max(count, int(n)))
    return {key: (names, np.array(totals), count) for key, (names, totals, count) in found.items()}


def apply_task_retention(store: Any, now: datetime, days: int) -> dict[str, int]:
    """Delete task rows and sums older than ``days`` before ``now`` (as windows are)."""
    cutoff = to_datetime(now) - timedelta(days=int(days))
    with store.transaction("apply_task_retention", write=True) as session:
        connection = session.connection()
        return {
            "explanation_tasks": connection.execute(delete(_T).where(_T.c.created_at < cutoff)).rowcount,
            "attribution_sums": connection.execute(delete(_S).where(_S.c.window_start < cutoff)).rowcount,
        }
