"""Long-tailed categorical data for the tests of pooling and novelty (issue 19).

A "city" column drawn from Zipf(1.1) over a fixed number of levels, next to two
numeric features (normal, lognormal). Windows come from the same distribution
unless told otherwise: ``new_share`` replaces that share of the rows (exactly, at
random positions) by one category the reference never saw; ``move`` moves that
much probability from one top category to another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ZIPF_EXPONENT = 1.1
REFERENCE_ROWS = 50_000
NEW_CATEGORY = "city-never-seen"


def zipf_shares(levels: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


class LongTail:
    """Draws reference and window frames for one number of levels."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.shares = zipf_shares(levels)
        self.names = np.array([f"city-{i}" for i in range(levels)], dtype=object)

    def frame(
        self,
        rng: np.random.Generator,
        rows: int,
        *,
        new_share: float = 0.0,
        move: tuple[int, int, float] | None = None,
    ) -> pd.DataFrame:
        shares = self.shares
        if move is not None:
            source, target, amount = move
            shares = shares.copy()
            shares[source] -= amount
            shares[target] += amount
        city = self.names[rng.choice(self.levels, size=rows, p=shares)]
        if new_share:
            city[rng.choice(rows, round(new_share * rows), replace=False)] = NEW_CATEGORY
        return pd.DataFrame(
            {"city": city, "x0": rng.normal(size=rows), "x1": rng.lognormal(sigma=0.6, size=rows)}
        )

    def reference(self, seed: int = 0) -> pd.DataFrame:
        return self.frame(np.random.default_rng(seed), REFERENCE_ROWS)


def split(window: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numeric and categorical matrices of a window, the way the daemon's batches hold them."""
    return window[["x0", "x1"]].to_numpy(), window[["city"]].to_numpy(dtype=object)
