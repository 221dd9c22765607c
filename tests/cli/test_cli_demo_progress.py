"""The progress line of ``driftd demo`` on a real pipeline: windows closed, drift, concept drift, clocks.

The two demo models run through the daemon's pipeline (``tests.app.problem_store``):
credit's num_0 and num_1 shift, churn's labels flip in region=eu. The line must
count windows closed (not the number of series, which stays at four), name the
drifting features and the accuracy drop, and show the event-time clock against
the wall clock.
"""

from __future__ import annotations

from types import SimpleNamespace

from tests.app.problem_store import N_WINDOWS, run_pipeline

from monitor.demo_progress import progress_line, windows_closed


def test_progress_line_counts_windows_and_names_what_drifted() -> None:
    pipeline, registry, start = run_pipeline(None)
    daemon = SimpleNamespace(
        collector=pipeline.collector, registry=registry, settings=pipeline.settings
    )
    # Event time one hour ahead of the wall clock, as a demo at speed 60 after a minute.
    service = SimpleNamespace(
        start_time=start,
        wall_started=0.0,
        speed=60.0,
        sent={"credit": 10, "churn": 5},
        event_now=lambda wall: start + N_WINDOWS * 300,
    )
    line = progress_line(daemon, service, 61.0, 120.0, wall_now=start + N_WINDOWS * 300 - 3600)
    keys = 2 * 2  # two models x two segments: what the old line showed as "windows"
    closed = windows_closed(registry)
    assert closed == 2 * 2 * (N_WINDOWS + 1) and closed != keys
    assert f"windows closed {closed};" in line
    assert "[  61/120 s]" in line and "events sent 15" in line
    assert "(x60, +60 min vs wall clock)" in line
    assert "drifting now: credit: num_0, num_1" in line
    concept = line.split("concept drift: ")[1]
    assert concept.startswith("churn region=eu ") and "vs baseline" in concept
    assert "region=us" not in concept and "credit" not in concept
