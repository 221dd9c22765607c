"""The progress line of ``driftd demo``: what the daemon has done and found so far.

One line every few seconds: wall seconds elapsed, the simulated event-time clock
(it runs ``speed`` times faster than the wall clock, so windows close every few
seconds and event time runs ahead of the wall), events sent, windows closed (the
``driftd_windows_closed_total`` counter, not the number of series), the features
drifting in the newest windows, and concept drift found by the labels (the
``DriftdPerformanceDrop`` rule of :func:`monitor.findings.performance_dropped`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.findings import worst_metric

__all__ = ["concept_findings", "drift_findings", "progress_line", "windows_closed"]

# Labelled windows with fewer labels than this do not count as concept findings (noise).
MIN_LABELS = 100


def windows_closed(registry: Any) -> int:
    """Windows closed so far, over every model (from the daemon's metrics registry)."""
    total = 0.0
    for family in registry.collect():
        if family.name == "driftd_windows_closed":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


def drift_findings(reports: list[Any]) -> list[str]:
    """``model: features`` drifting in the newest window of any segment, e.g. ``credit: num_0, num_1``."""
    by_model: dict[str, set[str]] = {}
    for report in reports:
        drifted = set(report.drifted_features) | {
            "prediction" for r in report.prediction if r.drifted
        }
        if drifted:
            by_model.setdefault(report.key.model, set()).update(drifted)
    return [f"{model}: {', '.join(sorted(names))}" for model, names in sorted(by_model.items())]


def concept_findings(labelled: list[Any], tolerance: float) -> list[str]:
    """``model segment metric value < baseline`` for the newest labelled windows that dropped."""
    found = []
    for report in labelled:
        if report is None or report.n_labels < MIN_LABELS:
            continue
        performance = {m: list(v) for m, v in report.performance.items()}
        metric = worst_metric(performance, report.baseline_performance, tolerance)
        if metric is not None:
            where = " ".join(p for p in (report.key.model, report.key.segment) if p)
            found.append(
                f"{where} {metric} {performance[metric][0]:.3f} vs baseline "
                f"{report.baseline_performance[metric]:.3f}"
            )
    return sorted(found)


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M")


def progress_line(
    daemon: Any, service: Any, elapsed: float, duration: float, wall_now: float
) -> str:
    """The demo's progress line (see module docstring)."""
    sections = daemon.collector._sections()
    latest = [latest for latest, _, _ in sections]
    labelled = [labelled for _, labelled, _ in sections]
    event_now = (
        service.event_now(service.wall_started)
        if service.wall_started is not None
        else service.start_time
    )
    ahead = (event_now - wall_now) / 60
    drifting = drift_findings(latest)
    concept = concept_findings(labelled, daemon.settings.alerts.performance_tolerance)
    return (
        f"  [{elapsed:4.0f}/{duration:.0f} s] event time {_clock(event_now)} UTC (x{service.speed:g}, "
        f"{ahead:+.0f} min vs wall clock); events sent {sum(service.sent.values()):,}; windows closed "
        f"{windows_closed(daemon.registry)}; drifting now: {'; '.join(drifting) or 'none'}; concept drift: "
        f"{'; '.join(concept) or 'none yet (labels arrive later)'}"
    )
