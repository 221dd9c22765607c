"""Multivariate drift as a domain classifier's cross-validated ROC AUC (reference vs window).

A ridge-penalised logistic regression, fitted by Newton's method (numpy only),
learns to tell reference rows from window rows on the standardised features,
their centred squares (so that a change of spread is learnable by a linear
model) and missing-value indicators. Five stratified folds give every row an
out-of-fold score; the AUC of those scores is the effect size (0.5 = the two
samples cannot be told apart) and the one-sided Mann–Whitney test of window
scores against reference scores is the p-value ("classifier two-sample test",
Lopez-Paz & Oquab 2017).

>>> import numpy as np
>>> from detectors.base import FeatureData
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=(1000, 3))
>>> cur = rng.normal(size=(1000, 3)) + np.array([0.0, 0.0, 1.0])
>>> empty = np.empty(0)
>>> result = domain_classifier(FeatureData("multivariate", empty, empty, ref, cur))
>>> round(result.score, 3), result.p_value < 1e-12
(0.775, True)
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from detectors._util import standardise
from detectors.base import DetectorError, FeatureData, MethodSpec, Score

__all__ = ["SPEC", "domain_classifier", "fit_logistic", "out_of_fold_scores"]

FOLDS = 5
RIDGE = 1.0


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE, max_iter: int = 50) -> np.ndarray:
    """Ridge logistic regression by Newton–Raphson; the last column of ``x`` is the unpenalised intercept."""
    weights = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], ridge)
    penalty[-1] = 0.0
    for _ in range(max_iter):
        mu = special.expit(x @ weights)
        gradient = x.T @ (mu - y) + penalty * weights
        hessian = (x * (mu * (1 - mu))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return weights


def _design(z: np.ndarray, n_values: int) -> np.ndarray:
    values = z[:, :n_values]
    return np.hstack([z, values**2 - 1.0, np.ones((z.shape[0], 1))])


def out_of_fold_scores(ref: np.ndarray, cur: np.ndarray, *, seed: int = 0, folds: int = FOLDS) -> np.ndarray:
    """Cross-fitted linear scores of every row (reference rows first), stratified folds."""
    n, m = ref.shape[0], cur.shape[0]
    ref_values, _ = standardise(ref, cur)
    ref_z, cur_z = standardise(ref, cur, indicators=True)
    x = _design(np.vstack([ref_z, cur_z]), ref_values.shape[1])
    y = np.concatenate([np.zeros(n), np.ones(m)])
    rng = np.random.default_rng(seed)
    fold = np.empty(n + m, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) % folds
    fold[n + rng.permutation(m)] = np.arange(m) % folds
    scores = np.empty(n + m)
    for k in range(folds):
        test = fold == k
        weights = fit_logistic(x[~test], y[~test])
        scores[test] = x[test] @ weights
    return scores


def domain_classifier(data: FeatureData, *, seed: int = 0, folds: int = FOLDS) -> Score:
    """Cross-validated AUC of reference-vs-window classification and its Mann–Whitney p-value."""
    if data.ref_sample is None or data.cur_sample is None:
        raise DetectorError("domain_classifier needs reference and current sample matrices")
    try:
        ref_z, _ = standardise(data.ref_sample, data.cur_sample, indicators=True)
    except ValueError as exc:
        raise DetectorError(str(exc)) from None
    n, m = len(data.ref_sample), len(data.cur_sample)
    if ref_z.shape[1] == 0 or min(n, m) < 2 * folds:
        return Score(float("nan"), None)
    scores = out_of_fold_scores(np.asarray(data.ref_sample), np.asarray(data.cur_sample), seed=seed, folds=folds)
    test = stats.mannwhitneyu(scores[n:], scores[:n], alternative="greater", method="asymptotic")
    return Score(float(test.statistic / (n * m)), float(test.pvalue))


SPEC = MethodSpec(
    name="domain_classifier",
    kinds=frozenset({"multivariate"}),
    needs="sample",
    default_threshold=0.65,
    higher_is_drift=True,
    source="NannyML 0.13 DomainClassifierCalculator default ConstantThreshold(upper=0.65) on "
    "cross-validated AUC (5 folds, as there)",
    description="Cross-validated ROC AUC of a logistic domain classifier (reference vs window)",
    score=domain_classifier,
    test="one-sided Mann–Whitney U of out-of-fold scores (window > reference)",
    score_range=(0.0, 1.0),
)
