"""Checks on a freshly built baseline that warn before it misleads.

A baseline built from the rows the model was fitted on has near-perfect reference
performance (a boosted model: accuracy 1.0, log loss 1e-5). Every live window is
then worse than the baseline, and ``DriftdPerformanceDrop`` pages on a healthy
model. :func:`training_fit_warnings` names the figures that look like that;
``driftd baseline build`` prints them and says to use held-out validation data
(docs/ground-truth.md, "Reference performance").
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["NEAR_PERFECT", "training_fit_warnings"]

#: (metric, bound, higher is better): reference figures at or past the bound look fitted.
NEAR_PERFECT = (("roc_auc", 0.999, True), ("accuracy", 0.999, True), ("log_loss", 0.01, False))
# Regression: RMSE below this share of the label's standard deviation.
_RMSE_SHARE = 1e-3


def training_fit_warnings(baseline: Any) -> list[str]:
    """Warnings (empty when none) for a baseline whose reference performance is near perfect."""
    performance = getattr(baseline, "performance", {}) or {}
    figures = []
    for metric, bound, higher in NEAR_PERFECT:
        value = performance.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value) and (value >= bound if higher else value <= bound):
            figures.append(f"{metric} {value:.4g}")
    label = getattr(baseline, "label", None)
    rmse, spread = performance.get("rmse"), getattr(label, "std", math.nan)
    if isinstance(rmse, (int, float)) and math.isfinite(spread) and spread > 0 and rmse <= _RMSE_SHARE * spread:
        figures.append(f"rmse {rmse:.4g} (label sd {spread:.4g})")
    if not figures:
        return []
    return [
        f"reference performance of {baseline.model} {baseline.version} is near perfect ({', '.join(figures)}): "
        "the data looks like the rows the model was fitted on. Every live window will then look like a "
        "performance drop. Build the baseline from held-out validation data (see docs/ground-truth.md)."
    ]
