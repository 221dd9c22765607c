"""Multivariate methods: PCA reconstruction error and the domain classifier.

Golden: the logistic fit equals scikit-learn's (intercept unpenalised, C = 1/ridge)
to 1e-5; the AUC equals ``roc_auc_score`` on the same out-of-fold scores to 1e-12;
PCA components and reconstruction errors equal scikit-learn's PCA(0.65) to 1e-8.
"""

from __future__ import annotations

import numpy as np
import pytest

from detectors._util import standardise
from detectors.base import DetectorError, FeatureData
from detectors.domain_classifier import fit_logistic, out_of_fold_scores
from detectors.multivariate import FEATURE, MULTIVARIATE_METHODS, evaluate
from detectors.pca_reconstruction import pca_reconstruction


def _correlated(rng: np.random.Generator, rows: int, columns: int = 6) -> np.ndarray:
    latent = rng.normal(size=(rows, 2))
    loadings = np.random.default_rng(0).normal(size=(2, columns))  # one structure for every sample
    return latent @ loadings + 0.4 * rng.normal(size=(rows, columns))


def test_logistic_fit_equals_sklearn() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x @ np.array([1.0, -0.5, 0.0, 0.3]) + rng.logistic(size=600) > 0).astype(float)
    ours = fit_logistic(np.hstack([x, np.ones((600, 1))]), y, ridge=2.0)
    theirs = linear_model.LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(x, y)
    assert np.allclose(ours[:-1], theirs.coef_[0], atol=1e-5)
    assert ours[-1] == pytest.approx(theirs.intercept_[0], abs=1e-5)


def test_domain_classifier_auc_is_roc_auc_of_out_of_fold_scores() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=(500, 3)), rng.normal(0.2, 1.0, size=(400, 3))
    result = evaluate("domain_classifier", ref, cur)
    scores = out_of_fold_scores(ref, cur)
    labels = np.r_[np.zeros(500), np.ones(400)]
    assert result.score == pytest.approx(metrics.roc_auc_score(labels, scores), rel=1e-12)


def test_pca_matches_sklearn_components_and_errors() -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(2)
    ref, cur = _correlated(rng, 2000), _correlated(rng, 800)
    ref_z, cur_z = standardise(ref, cur)
    order = np.random.default_rng(0).permutation(len(ref_z))
    fit, holdout = ref_z[order[:1000]], ref_z[order[1000:]]
    pca = decomposition.PCA(n_components=0.65, svd_solver="full").fit(fit)
    errors = lambda x: np.linalg.norm(x - pca.inverse_transform(pca.transform(x)), axis=1)
    expected = (errors(cur_z).mean() - errors(holdout).mean()) / errors(holdout).std(ddof=1)
    empty = np.empty(0)
    assert pca_reconstruction(FeatureData("multivariate", empty, empty, ref, cur)).score == pytest.approx(expected, rel=1e-8)


def test_no_drift_is_not_flagged_and_p_values_hold_their_level() -> None:
    rng = np.random.default_rng(3)
    flags = {name: 0 for name in MULTIVARIATE_METHODS}
    low_p = {name: 0 for name in MULTIVARIATE_METHODS}
    trials = 40
    for seed in range(trials):
        ref, cur = _correlated(rng, 600, 4), _correlated(rng, 400, 4)
        for name in MULTIVARIATE_METHODS:
            result = evaluate(name, ref, cur, seed=seed)
            flags[name] += result.drifted
            low_p[name] += result.p_value < 0.05
    print(f"\nmultivariate, no drift, {trials} trials: flags {flags}, p < 0.05 {low_p}")
    assert all(count == 0 for count in flags.values())
    # 5 % of 40 is 2; allow 3 binomial standard errors (about 4.1 more).
    assert all(count <= 6 for count in low_p.values())


def test_broken_correlation_is_caught_by_pca_and_shifted_means_by_the_classifier() -> None:
    rng = np.random.default_rng(4)
    ref = _correlated(rng, 2000)
    broken = rng.permuted(_correlated(rng, 1000), axis=0)  # each column shuffled on its own: same margins
    shifted = _correlated(rng, 1000) + 0.8
    pca = evaluate("pca_reconstruction", ref, broken)
    classifier = evaluate("domain_classifier", ref, shifted)
    assert pca.drifted and pca.feature == FEATURE and pca.p_value < 1e-6
    assert classifier.drifted and classifier.score > 0.65


def test_missing_values_are_handled_and_missingness_itself_is_seen() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4))
    ref[rng.random(ref.shape) < 0.02] = np.nan
    cur[rng.random(cur.shape) < 0.02] = np.nan
    quiet = evaluate("domain_classifier", ref, cur)
    assert not quiet.drifted and np.isfinite(quiet.score)
    cur[rng.random(len(cur)) < 0.6, 1] = np.nan  # a feature goes missing for 60 % of rows
    assert evaluate("domain_classifier", ref, cur).drifted
    assert np.isfinite(evaluate("pca_reconstruction", ref, cur).score)


def test_bad_input_raises_a_named_error() -> None:
    with pytest.raises(DetectorError, match="same columns"):
        evaluate("pca_reconstruction", np.zeros((50, 3)), np.zeros((50, 2)))
    with pytest.raises(DetectorError, match="allowed: domain_classifier, pca_reconstruction"):
        evaluate("psi", np.zeros((50, 3)), np.zeros((50, 3)))
    tiny = evaluate("domain_classifier", np.random.default_rng(0).normal(size=(5, 3)), np.zeros((4, 3)))
    assert np.isnan(tiny.score) and not tiny.drifted
