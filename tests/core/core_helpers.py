"""Batches for the streaming-core tests."""

from __future__ import annotations

import numpy as np

from monitor.batch import PredictionBatch
from monitor.windows import Layout


def make_batch(layout: Layout, n: int, seed: int, start: float = 0.0, span: float = 300.0, shift: float = 0.0, first_offset: int = 0) -> PredictionBatch:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, len(layout.numeric_names))) + shift
    numeric[rng.random(numeric.shape) < 0.02] = np.nan
    categorical = rng.choice(np.array(["alpha", "beta", "gamma", "zeta", None], dtype=object), size=(n, len(layout.categorical_names)))
    scores = rng.random(n)
    return PredictionBatch(
        model="credit", version="v1",
        prediction_ids=[f"p{seed}-{i}" for i in range(n)],
        event_times=start + np.sort(rng.random(n)) * span,
        segments=list(rng.choice(["", "region=eu"], size=n)),
        numeric_names=layout.numeric_names, numeric=numeric,
        categorical_names=layout.categorical_names, categorical=categorical,
        predictions=np.where(scores > 0.5, "1", "0").astype(object), scores=scores,
        offsets=np.arange(first_offset, first_offset + n, dtype=np.int64),
    )
