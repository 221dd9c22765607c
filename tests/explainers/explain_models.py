"""Models trained in the tests (seconds), data generators and batch builders.

A uniquely named module (not conftest) so that test files can import it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.batch import PredictionBatch

FEATURES = ["x1", "x2", "x3", "x4", "x5"]


def inputs(n: int, seed: int) -> pd.DataFrame:
    """Five i.i.d. standard normal inputs: every window has the same distribution."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)


def labels(frame: pd.DataFrame, weights: tuple[float, ...], seed: int) -> np.ndarray:
    """Labels from a logistic rule over the inputs with the given weights."""
    rng = np.random.default_rng(seed)
    logit = frame[FEATURES[: len(weights)]].to_numpy() @ np.asarray(weights)
    return (rng.random(len(frame)) < 1.0 / (1.0 + np.exp(-logit))).astype(int)


# Rule 1 leans on x1, rule 2 on x2: the roles of x1 and x2 are swapped.
RULE_1 = (3.0, 1.0, 0.3)
RULE_2 = (1.0, 3.0, 0.3)


def train_xgboost(path: Path, weights: tuple[float, ...], seed: int, n: int = 4000, suffix: str = ".json",
                  trees: int = 60, depth: int = 3) -> Path:
    import xgboost

    frame = inputs(n, seed)
    model = xgboost.XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=0.2, random_state=seed, n_jobs=1)
    model.fit(frame, labels(frame, weights, seed + 1))
    target = path.with_suffix(suffix)
    model.get_booster().save_model(str(target))
    return target


def categorical_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = inputs(n, seed)[["x1", "x2"]]
    frame["colour"] = pd.Categorical(rng.choice(["red", "green", "blue"], size=n), categories=["blue", "green", "red"])
    return frame


def train_lightgbm(path: Path, seed: int = 0, n: int = 3000) -> Path:
    import lightgbm

    frame = categorical_frame(n, seed)
    logit = 2 * frame["x1"] + (frame["colour"] == "red") * 2.0 - 1.0
    y = (np.random.default_rng(seed + 1).random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=40, num_leaves=8, random_state=seed, verbose=-1, n_jobs=1)
    model.fit(frame, y)
    target = path.with_suffix(".txt")
    model.booster_.save_model(str(target))
    return target


def make_batch(
    frame: pd.DataFrame,
    model: str,
    version: str = "v1",
    *,
    prefix: str = "p",
    event_time: float | None = None,
    scores: np.ndarray | None = None,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
) -> PredictionBatch:
    """A PredictionBatch as the consumer would build it from logged events."""
    n = len(frame)
    numeric = numeric if numeric is not None else [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    categorical = categorical if categorical is not None else [c for c in frame.columns if c not in numeric]
    cat = np.empty((n, len(categorical)), dtype=object)
    for j, name in enumerate(categorical):
        cat[:, j] = frame[name].astype(object).to_numpy()
    return PredictionBatch(
        model=model,
        version=version,
        prediction_ids=[f"{prefix}{i}" for i in range(n)],
        event_times=np.full(n, time.time() if event_time is None else event_time),
        segments=[""] * n,
        numeric_names=list(numeric),
        numeric=frame[numeric].to_numpy(dtype=np.float64) if numeric else np.empty((n, 0)),
        categorical_names=list(categorical),
        categorical=cat,
        predictions=np.zeros(n),
        scores=scores,
    )
