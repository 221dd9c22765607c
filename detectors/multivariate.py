"""Multivariate drift on the window's bounded sample: one call for the pipeline and the CLI.

The methods live in :data:`detectors.registry.REGISTRY` with kind
``"multivariate"`` (so :func:`detectors.decision.decide` and configuration checks
know them); this module feeds them numeric matrices.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> ref = rng.normal(size=(1500, 4))
>>> result = evaluate("domain_classifier", ref, rng.normal(size=(1500, 4)))
>>> result.method, result.drifted
('domain_classifier', False)
>>> MULTIVARIATE_METHODS
('domain_classifier', 'pca_reconstruction')
"""

from __future__ import annotations

import numpy as np

from detectors.base import DetectorError, DriftResult, FeatureData
from detectors.registry import REGISTRY, methods_for

__all__ = ["FEATURE", "MULTIVARIATE_METHODS", "evaluate"]

MULTIVARIATE_METHODS: tuple[str, ...] = tuple(methods_for("multivariate"))
# The pseudo-feature name multivariate results carry (metric label, store key).
FEATURE = "__multivariate__"


def evaluate(
    method: str,
    reference: np.ndarray,
    current: np.ndarray,
    *,
    threshold: float | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> DriftResult:
    """Score ``current`` against ``reference`` with a multivariate method and decide.

    Parameters
    ----------
    method
        One of :data:`MULTIVARIATE_METHODS`.
    reference, current
        Matrices of the same numeric columns (rows = sampled events); NaN marks a
        missing value (imputed at the reference mean, plus missingness indicators
        for the domain classifier).
    threshold
        Effect threshold; the method's default when None.
    alpha
        Significance level of the method's p-value (one test: no correction).
    seed
        Seed of the random split (reference halves, cross-validation folds).
    """
    if method not in MULTIVARIATE_METHODS:
        raise DetectorError(
            f"unknown multivariate method {method!r}; allowed: {', '.join(MULTIVARIATE_METHODS)}"
        )
    spec = REGISTRY[method]
    empty = np.empty(0)
    data = FeatureData("multivariate", empty, empty, np.asarray(reference), np.asarray(current))
    score = spec.score(data, seed=seed)  # type: ignore[call-arg]  # multivariate hooks take a seed
    limit = spec.default_threshold if threshold is None else threshold
    drifted = spec.passes(score.score, limit) and score.p_value is not None and score.p_value < alpha
    return DriftResult(method, FEATURE, score.score, score.p_value, limit, bool(drifted))
