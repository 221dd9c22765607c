"""A simulated serving service: training data and prediction/label streams with drift on schedule.

Used by ``driftd demo`` and by the tests. Everything is generated from a seed; no
data set is downloaded.

The simulated model is a logistic model over the numeric features (scores are
calibrated by construction), with categorical features that shift the log-odds a
little. A :class:`Scenario` says which features shift, from which event time and by
how much, and optionally from when labels flip for one segment (concept drift with
unchanged inputs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd

__all__ = ["Scenario", "training_frame", "prediction_events", "label_events", "encode"]

CATEGORIES = ("alpha", "beta", "gamma", "delta", "epsilon")
REGIONS = ("eu", "us")


@dataclass(frozen=True)
class Scenario:
    """A model and how its traffic drifts.

    Attributes
    ----------
    drift_features
        Numeric features whose mean shifts by ``shift`` standard deviations from
        ``drift_start`` (event time) on.
    concept_start
        From this event time, labels of segment ``concept_segment`` are flipped while
        inputs stay the same (None = never).
    """

    model: str = "credit"
    version: str = "v1"
    n_numeric: int = 6
    n_categorical: int = 2
    drift_features: tuple[str, ...] = ("num_0", "num_1")
    drift_start: float = float("inf")
    shift: float = 1.0
    concept_start: float | None = None
    concept_segment: str = "eu"
    seed: int = 0
    weights: tuple[float, ...] = field(default=())

    @property
    def numeric_names(self) -> list[str]:
        return [f"num_{i}" for i in range(self.n_numeric)]

    @property
    def categorical_names(self) -> list[str]:
        return [f"cat_{i}" for i in range(self.n_categorical)]

    def coefficients(self) -> np.ndarray:
        if self.weights:
            return np.asarray(self.weights, dtype=np.float64)
        return np.linspace(1.5, 0.2, self.n_numeric) * np.where(np.arange(self.n_numeric) % 2, -1, 1)


def _inputs(scenario: Scenario, n: int, rng: np.random.Generator, shifted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    numeric = rng.normal(size=(n, scenario.n_numeric))
    if shifted is not None and shifted.any():
        for name in scenario.drift_features:
            numeric[shifted, scenario.numeric_names.index(name)] += scenario.shift
    probabilities = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    categorical = rng.choice(np.array(CATEGORIES, dtype=object), size=(n, scenario.n_categorical), p=probabilities)
    regions = rng.choice(np.array(REGIONS, dtype=object), size=n)
    return numeric, categorical, regions


def _scores(scenario: Scenario, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    logit = numeric @ scenario.coefficients() - 0.3
    if scenario.n_categorical:
        logit = logit + 0.4 * (categorical[:, 0] == "alpha")
    return 1.0 / (1.0 + np.exp(-logit))


def training_frame(scenario: Scenario, n: int = 20_000) -> pd.DataFrame:
    """Training data with features, ``target``, ``prediction`` and ``score`` columns."""
    rng = np.random.default_rng(scenario.seed)
    numeric, categorical, _ = _inputs(scenario, n, rng)
    scores = _scores(scenario, numeric, categorical)
    frame = pd.DataFrame(numeric, columns=scenario.numeric_names)
    for j, name in enumerate(scenario.categorical_names):
        frame[name] = categorical[:, j]
    frame["target"] = (rng.random(n) < scores).astype(int)
    frame["prediction"] = (scores >= 0.5).astype(int)
    frame["score"] = scores
    return frame


def prediction_events(scenario: Scenario, start: float, n: int, rate: float, seed: int = 1) -> tuple[list[dict], np.ndarray]:
    """``n`` prediction events from event time ``start`` at ``rate`` per second.

    Returns the events and their true labels (drawn from the calibrated scores, then
    flipped in the concept-drift segment after ``concept_start``).
    """
    rng = np.random.default_rng(seed)
    times = start + np.arange(n) / rate
    shifted = times >= scenario.drift_start
    numeric, categorical, regions = _inputs(scenario, n, rng, shifted)
    scores = _scores(scenario, numeric, categorical)
    labels = (rng.random(n) < scores).astype(int)
    if scenario.concept_start is not None:
        flip = (times >= scenario.concept_start) & (regions == scenario.concept_segment)
        labels[flip] = 1 - labels[flip]
    events = []
    numeric_names, categorical_names = scenario.numeric_names, scenario.categorical_names
    for i in range(n):
        features: dict[str, object] = {name: float(numeric[i, j]) for j, name in enumerate(numeric_names)}
        for j, name in enumerate(categorical_names):
            features[name] = categorical[i, j]
        p = float(scores[i])
        events.append({
            "model": scenario.model,
            "model_version": scenario.version,
            "prediction_id": f"{scenario.model}-{seed}-{i}",
            "timestamp": float(times[i]),
            "features": features,
            "prediction": int(p >= 0.5),
            "scores": {"0": 1.0 - p, "1": p},
            "segment": {"region": regions[i]},
        })
    return events, labels


def label_events(events: list[dict], labels: np.ndarray, delay: float, jitter: float = 0.0, seed: int = 2, coverage: float = 1.0) -> list[dict]:
    """Label events for ``events``, ``delay`` (+ uniform ``jitter``) seconds after each prediction.

    Labels are returned in arrival order, i.e. shuffled relative to the predictions
    when ``jitter`` > 0; ``coverage`` < 1 leaves some predictions without a label.
    """
    rng = np.random.default_rng(seed)
    keep = rng.random(len(events)) < coverage
    arrival = np.array([e["timestamp"] for e in events]) + delay + rng.random(len(events)) * jitter
    order = np.argsort(arrival, kind="stable")
    return [
        {"prediction_id": events[i]["prediction_id"], "label": int(labels[i]), "timestamp": float(arrival[i]), "model": events[i]["model"]}
        for i in order if keep[i]
    ]


def encode(events: list[dict]) -> Iterator[bytes]:
    """JSON bytes of each event, the way a serving service logs them."""
    dumps = orjson.dumps
    return (dumps(e) for e in events)
