"""Windows built straight from the population as aggregates, scored by the daemon's decision code.

A window of ``n`` events is what :class:`monitor.windows.WindowAggregate` would hold
after folding ``n`` events drawn from the population: numeric counts on the
baseline's quantile bins, categorical counts on its top-k / other / unseen bins
(one multinomial draw over the population's bin shares), and a uniform sample of
at most ``sample_size`` numeric rows. It is scored by
:func:`monitor.evaluate.evaluate_window` (floors, budget levels, BH, novelty,
multivariate), without the per-event string handling that makes 2,000 windows of
up to 20,000 events slow.

Features: ``x0`` normal, ``x1`` lognormal, ``x2`` integer 0-11 (tested as
categories), ``c0`` five categories, ``city`` Zipf(1.1) over 2,000 levels (the
long tail: the baseline keeps 1,000 names, so some mass is "unseen" by design).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.baseline import build_baseline
from monitor.config import DriftSettings
from monitor.evaluate import evaluate_window
from monitor.results import WindowKey, WindowReport
from monitor.windows import Layout, WindowAggregate

from .longtail import zipf_shares

CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
SHARES = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
CITY_LEVELS = 2000
CITIES = np.array([f"city-{i}" for i in range(CITY_LEVELS)], dtype=object)
CITY_SHARES = zipf_shares(CITY_LEVELS)
REFERENCE_ROWS = 100_000
WINDOW_SECONDS = 300.0


def draw_numeric(rng: np.random.Generator, rows: int, mean_shift: float = 0.0) -> np.ndarray:
    return np.column_stack(
        [rng.normal(size=rows) + mean_shift, rng.lognormal(sigma=0.6, size=rows), rng.integers(0, 12, rows).astype(float)]
    )


def reference_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numeric = draw_numeric(rng, REFERENCE_ROWS)
    return pd.DataFrame(
        {
            "x0": numeric[:, 0], "x1": numeric[:, 1], "x2": numeric[:, 2],
            "c0": CATEGORIES[rng.choice(5, REFERENCE_ROWS, p=SHARES)],
            "city": CITIES[rng.choice(CITY_LEVELS, REFERENCE_ROWS, p=CITY_SHARES)],
        }
    )


class AggregateWindows:
    """One model's baseline and no-drift (or shifted) windows as aggregates."""

    def __init__(self, seed: int = 0, sample_size: int = 2000) -> None:
        types = {"x0": "numeric", "x1": "numeric", "x2": "numeric"}
        self.baseline = build_baseline(
            reference_frame(seed), "model", "1", feature_types=types, sample_size=sample_size, reference_rows=0
        )
        self.layout = Layout(self.baseline, sample_size)
        self.sample_size = sample_size
        self._bin_shares = {
            "c0": self._population_bins("c0", CATEGORIES, SHARES),
            "city": self._population_bins("city", CITIES, CITY_SHARES),
        }

    def _population_bins(self, name: str, values: np.ndarray, shares: np.ndarray) -> np.ndarray:
        profile = self.baseline.features[name]
        codes = profile.category_codes()
        bins = np.zeros(profile.n_bins)
        for value, share in zip(values, shares):
            bins[codes.get(value, profile.unseen_bin)] += share
        return bins / bins.sum()

    def window(
        self, rng: np.random.Generator, n: int, *, mean_shift: float = 0.0, c0_shares: np.ndarray | None = None
    ) -> WindowAggregate:
        layout = self.layout
        aggregate = layout.empty()
        aggregate.n, aggregate.start, aggregate.end = n, 0.0, WINDOW_SECONDS
        numeric = draw_numeric(rng, n, mean_shift)
        for j, name in enumerate(layout.numeric_names):
            lo, hi = layout.numeric_offsets[j], layout.numeric_offsets[j + 1]
            edges = self.baseline.features[name].edges
            column = numeric[:, ["x0", "x1", "x2"].index(name)]
            aggregate.numeric_counts[lo:hi] = np.bincount(np.searchsorted(edges, column, side="right"), minlength=hi - lo)
        for j, name in enumerate(layout.categorical_names):
            lo, hi = layout.categorical_offsets[j], layout.categorical_offsets[j + 1]
            shares = self._bin_shares[name]
            if name == "c0" and c0_shares is not None:
                shares = self._population_bins("c0", CATEGORIES, c0_shares)
            aggregate.categorical_counts[lo:hi] = rng.multinomial(n, shares)
        rows = min(n, self.sample_size)
        order = [["x0", "x1", "x2"].index(name) for name in layout.numeric_names]
        aggregate.sample = np.column_stack([numeric[:rows, order], np.full((rows, 2), np.nan)])
        return aggregate

    def evaluate(self, aggregate: WindowAggregate, drift: DriftSettings, segment: str = "") -> WindowReport:
        return evaluate_window(
            WindowKey("model", "1", segment), 0.0, WINDOW_SECONDS, aggregate, self.layout, drift, None, 100
        )


def flagged(report: WindowReport) -> bool:
    """Whether any alertable decision of the window is a flag (features, outputs, multivariate)."""
    return any(r.drifted for r in [*report.features, *report.prediction, *report.multivariate])
