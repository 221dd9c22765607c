"""Simulated windows pushed through the daemon's own FeatureData path.

Reference profiles come from :func:`monitor.baseline.build_baseline`; a window is
a :class:`monitor.batch.PredictionBatch` binned by :class:`monitor.windows.Layout`,
folded into a :class:`monitor.windows.WindowAggregate` (counts on the reference
bins, bottom-k uniform sample of ``sample_size`` rows) and scored by
:func:`monitor.evaluate.evaluate_window` — exactly what a closed window goes
through in ``driftd run``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.baseline import Baseline, build_baseline
from monitor.batch import PredictionBatch
from monitor.config import DriftSettings
from monitor.evaluate import evaluate_window
from monitor.results import WindowKey, WindowReport
from monitor.windows import Layout

CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
CATEGORY_SHARES = np.array([0.35, 0.25, 0.2, 0.12, 0.08])


def numeric_columns(rng: np.random.Generator, rows: int, n_numeric: int) -> np.ndarray:
    """Columns of mixed shapes: normal, lognormal, uniform, exponential, discrete (12 values)."""
    shapes = [
        lambda: rng.normal(size=rows),
        lambda: rng.lognormal(sigma=0.6, size=rows),
        lambda: rng.uniform(-3, 3, size=rows),
        lambda: rng.exponential(size=rows),
        lambda: rng.integers(0, 12, size=rows).astype(np.float64),
    ]
    return np.column_stack([shapes[j % len(shapes)]() for j in range(n_numeric)])


def categorical_columns(rng: np.random.Generator, rows: int, n_categorical: int) -> np.ndarray:
    return np.column_stack([CATEGORIES[rng.choice(5, size=rows, p=CATEGORY_SHARES)] for _ in range(n_categorical)])


def frame(numeric: np.ndarray, categorical: np.ndarray) -> pd.DataFrame:
    columns = {f"x{j}": numeric[:, j] for j in range(numeric.shape[1])}
    columns.update({f"c{j}": categorical[:, j] for j in range(categorical.shape[1])})
    return pd.DataFrame(columns)


class PipelinePath:
    """One model's baseline and a way to score windows exactly as the daemon does."""

    def __init__(self, reference: pd.DataFrame, sample_size: int = 2000) -> None:
        # Integer-valued columns stay numeric (the discrete shape is a numeric feature
        # with few distinct values, which automatic choice sends to chi-square).
        types = {c: "numeric" for c in reference.columns if c.startswith("x")}
        self.baseline: Baseline = build_baseline(
            reference, "model", "1", feature_types=types, sample_size=sample_size, reference_rows=0
        )
        self.layout = Layout(self.baseline, sample_size)
        self.sample_size = sample_size
        self._offset = 0

    def aggregate(self, numeric: np.ndarray, categorical: np.ndarray):
        rows = len(numeric)
        offsets = np.arange(self._offset, self._offset + rows, dtype=np.int64)
        self._offset += rows
        batch = PredictionBatch(
            model="model",
            version="1",
            prediction_ids=[str(i) for i in offsets],
            event_times=np.zeros(rows),
            segments=[""] * rows,
            numeric_names=self.layout.numeric_names,
            numeric=numeric,
            categorical_names=self.layout.categorical_names,
            categorical=categorical.astype(object),
            predictions=np.full(rows, np.nan),
            offsets=offsets,
        )
        aggregate = self.layout.empty()
        aggregate.add(self.layout.bin_batch(batch), slice(None), self.sample_size)
        return aggregate

    def evaluate(self, aggregate, drift: DriftSettings | None = None) -> WindowReport:
        return evaluate_window(
            WindowKey("model", "1", ""), 0.0, 300.0, aggregate, self.layout, drift or DriftSettings(), None, 100
        )
