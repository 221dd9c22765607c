"""Fixtures for the streaming core: a baseline and batches from the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.baseline import Baseline, build_baseline
from monitor.simulate import Scenario, training_frame
from monitor.windows import Layout

SCENARIO = Scenario(model="credit", version="v1", n_numeric=5, n_categorical=2, seed=3)


@pytest.fixture(scope="session")
def baseline() -> Baseline:
    frame = training_frame(SCENARIO, n=20_000)
    return build_baseline(frame, "credit", "v1", target="target", prediction="prediction", score="score", sample_size=2000)


@pytest.fixture(scope="session")
def layout(baseline: Baseline) -> Layout:
    return Layout(baseline, sample_size=500)
