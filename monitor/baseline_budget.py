"""The ``budget`` section of ``driftd baseline show``: what the false-alarm budget implies.

The budget (``drift.false_alarms_per_day``) becomes a per-window level and a
per-test level (:mod:`detectors.budget`); each feature's effective threshold is
``max(configured, noise floor at the window's n)`` (:mod:`detectors.noise`). The
table shows those figures for this baseline at a few window sizes, so an ML
engineer sees before deploying how large a shift a small window needs to flag.
"""

from __future__ import annotations

import numpy as np

from detectors.base import FeatureData
from detectors.noise import effective_threshold
from monitor.baseline import Baseline, FeatureProfile
from monitor.cli_tables import Column, TextTable, fmt
from monitor.config import DriftSettings, WindowSettings
from monitor.evaluate import budget_for, method_for

__all__ = ["EVENTS", "budget_tables", "window_tests"]

EVENTS = (400, 5_000, 50_000)


def window_tests(baseline: Baseline, drift: DriftSettings) -> int:
    """Tests in one window of this baseline: features, novelty tests, outputs, multivariate."""
    tests = len(baseline.features)
    for profile in baseline.features.values():
        if profile.kind == "categorical" and method_for(profile, drift, None)[0] == "chisquare":
            tests += 1
    tests += sum(p is not None for p in (baseline.prediction, baseline.score))
    numeric = sum(p.kind == "numeric" for p in baseline.features.values())
    return tests + int(drift.multivariate_method != "none" and numeric >= 2)


def _expected_window(profile: FeatureProfile, events: int, sample_size: int) -> FeatureData:
    """The window a feature would show at ``events`` events with no drift (expected counts)."""
    counts = np.asarray(profile.counts, dtype=np.float64)
    expected = counts / counts.sum() * events if counts.sum() > 0 else counts
    if profile.kind == "numeric":
        sample = np.resize(profile.sample, min(events, sample_size)) if len(profile.sample) else None
        return FeatureData("numeric", counts, expected, profile.sample, sample, profile.std)
    return FeatureData("categorical", counts, expected, unseen_bin=profile.unseen_bin,
                       expected_unseen=profile.unseen_estimate)


def budget_tables(baseline: Baseline, drift: DriftSettings, windows: WindowSettings) -> list[TextTable]:
    """The budget's figures, then each feature's effective threshold at :data:`EVENTS` events."""
    budget = budget_for(drift, windows.size_seconds)
    tests = window_tests(baseline, drift)
    summary = TextTable([Column("field"), Column("value", flexible=True)], title="False-alarm budget")
    if budget is None:
        summary.add_row("budget", f"none: alpha {drift.alpha:g} per test, configured thresholds")
        return [summary]
    for name, value in budget.describe(tests):
        summary.add_row(name, value)
    level = budget.test_level(tests)
    columns = [Column("feature", flexible=True), Column("method"), Column("set", right=True)]
    columns += [Column(f"n={n:,}", right=True) for n in EVENTS]
    table = TextTable(columns, title="Effective thresholds (max of configured and noise floor)")
    for name, profile in baseline.features.items():
        method, threshold = method_for(profile, drift, None)
        row = [effective_threshold(method, _expected_window(profile, n, windows.sample_size), threshold, level)
               for n in EVENTS]
        table.add_row(name, method, fmt(threshold, 3), *(fmt(value, 3) for value in row))
    return [summary, table]
