"""Label results into their windows' reports, wherever the window is.

A label that joins after its window closed updates that window's report: the one
in memory (``Pipeline.recent``) if it is still there, otherwise the stored one
(``stored_report``, the store's read layer), so restarts and windows long gone from
memory get their labels too. The updated report is published again (metrics and
the store's upsert), which makes the update idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from monitor.results import WindowKey, WindowReport

__all__ = ["apply", "copy_labels", "dead_labels"]

log = logging.getLogger(__name__)


def apply(pipeline: Any) -> None:
    """Copy every pending label update into its window's report and publish it."""
    if pipeline.truth is None:
        return
    for update in pipeline.truth.updates():
        slot = (update.key, update.window_start)
        report = pipeline.recent.get(slot)
        if report is None and pipeline.stored_report is not None and slot not in pipeline.windows.open:
            report = _load_stored(pipeline, *slot)
        if report is None:
            continue  # still open: the labels are copied when it closes
        copy_labels(report, update)
        pipeline._publish(report)


def _load_stored(pipeline: Any, key: WindowKey, start: float) -> WindowReport | None:
    """The closed window as stored, to update with labels that came after it left memory."""
    try:
        report = pipeline.stored_report(key, start)
    except Exception as exc:  # noqa: BLE001 - a store outage must not stop ingest
        log.warning("labels for %s %s window %.0f not applied: store unavailable (%s)", key.model, key.segment, start, exc)
        pipeline.metrics.store_errors.labels(operation="window_report").inc()
        return None
    if report is None:
        pipeline.metrics.late_label_windows_missing.inc()
    return report


def copy_labels(report: WindowReport, update: Any) -> None:
    """The label-based results of ``update`` into ``report``."""
    report.n_labels = update.n_labels
    report.performance = dict(update.performance)
    report.calibration = dict(update.calibration)
    if update.label_drift:
        report.label = list(update.label_drift)


def dead_labels(pipeline: Any) -> list[tuple[bytes, str, str]]:
    """Labels whose prediction never arrived within the TTL: (value, reason, detail) to dead-letter."""
    if pipeline.truth is None:
        return []
    dead = []
    for item in pipeline.truth.drain_dead_labels():
        pipeline.metrics.invalid_events.labels(reason=item.reason).inc()
        value = orjson.dumps({"prediction_id": item.prediction_id, "label": item.label, "timestamp": item.event_time, "model": item.model})
        dead.append((value, item.reason, item.detail))
    return dead
