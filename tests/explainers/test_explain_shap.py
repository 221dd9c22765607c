"""Explainer choice, additivity and agreement with shap run directly (in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.explainers.explain_models import FEATURES, RULE_1, categorical_frame, inputs, labels, make_batch, train_lightgbm, train_xgboost

from explainers import AdditivityError, global_importances, load_model
from explainers.encoding import FeatureEncoder
from explainers.shap_backend import ADDITIVITY_TOLERANCE, check_additivity, make_explainer

shap = pytest.importorskip("shap")


def _additive(explained) -> float:
    return float(np.max(np.abs(explained.base_values + explained.values.sum(1) - explained.outputs)))


def test_xgboost_tree_explainer_matches_shap_and_is_additive_in_log_odds(model_dir: Path) -> None:
    import xgboost

    path = train_xgboost(model_dir / "xgb", RULE_1, seed=0, n=2000)
    loaded = load_model(path)
    X = inputs(200, 9).to_numpy()
    explained = make_explainer(loaded).explain(X)
    direct = shap.TreeExplainer(xgboost.Booster(model_file=str(path)))
    # Same library, same input: identical up to float rounding.
    np.testing.assert_allclose(explained.values, direct.shap_values(X), rtol=0, atol=1e-9)
    # Additivity in log-odds: base + sum = margin; sigmoid(margin) = predicted probability.
    probability = xgboost.Booster(model_file=str(path)).predict(xgboost.DMatrix(X, feature_names=FEATURES))
    total = explained.base_values + explained.values.sum(1)
    np.testing.assert_allclose(1 / (1 + np.exp(-total)), probability, rtol=1e-5, atol=1e-6)
    assert _additive(explained) < ADDITIVITY_TOLERANCE


def test_lightgbm_categorical_strings_map_to_the_models_categories(model_dir: Path) -> None:
    path = train_lightgbm(model_dir / "lgb")
    loaded = load_model(path)
    frame = categorical_frame(300, 3)
    encoder = FeatureEncoder(loaded.feature_names, loaded.categories)
    # Events carry the category as a string; training used a pandas categorical.
    logged = frame.assign(colour=frame["colour"].astype(str))
    X = encoder.from_batch(make_batch(logged, "lgb", numeric=["x1", "x2"], categorical=["colour"]))
    np.testing.assert_array_equal(X, encoder.from_frame(frame))
    np.testing.assert_array_equal(X[:, 2], frame["colour"].cat.codes.to_numpy(dtype=float))
    explained = make_explainer(loaded).explain(X)
    np.testing.assert_allclose(loaded.output(X)[:, 0], loaded.model.predict(frame, raw_score=True), rtol=1e-12)
    direct = shap.TreeExplainer(loaded.model).shap_values(frame)
    np.testing.assert_allclose(explained.values, direct, atol=1e-9)
    assert _additive(explained) < 1e-9
    # An unseen category is missing (NaN), not a crash.
    odd = logged.head(3).assign(colour=["purple", None, "red"])
    X_odd = encoder.from_batch(make_batch(odd, "lgb", numeric=["x1", "x2"], categorical=["colour"]))
    assert np.isnan(X_odd[0, 2]) and np.isnan(X_odd[1, 2]) and X_odd[2, 2] == 2.0


def test_multiclass_explains_the_predicted_class(model_dir: Path) -> None:
    import xgboost

    frame = inputs(1500, 0)
    y = np.digitize(frame["x1"] + 0.5 * frame["x2"], [-0.5, 0.5])
    path = model_dir / "multi.json"
    xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(frame, y).get_booster().save_model(str(path))
    loaded = load_model(path)
    assert loaded.n_outputs == 3
    X = inputs(100, 4).to_numpy()
    explained = make_explainer(loaded).explain(X)
    margins = loaded.output(X)
    np.testing.assert_array_equal(explained.classes, margins.argmax(1))
    np.testing.assert_allclose(explained.outputs, margins.max(1), rtol=1e-6)
    assert explained.values.shape == (100, 5)


def test_sklearn_forest_is_explained_in_probability_space(tmp_path: Path) -> None:
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    frame = inputs(800, 0)
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, labels(frame, RULE_1, 1))
    path = tmp_path / "forest.skops"
    path.write_bytes(skops.io.dumps(forest))
    loaded = load_model(path)
    X = inputs(50, 2).to_numpy()
    explained = make_explainer(loaded).explain(X)
    np.testing.assert_allclose(explained.outputs, forest.predict_proba(pd.DataFrame(X, columns=FEATURES))[:, 1], atol=1e-12)
    assert _additive(explained) < 1e-9


def test_additivity_check_catches_a_mismatched_explainer(model_dir: Path) -> None:
    path = train_xgboost(model_dir / "xgb", RULE_1, seed=0, n=2000)
    explainer = make_explainer(load_model(path))
    explained = explainer.explain(inputs(20, 1).to_numpy())
    # Explanations of another model (here: the margin shifted by 0.01) must be refused.
    shifted = type(explained)(explained.values, explained.base_values, explained.outputs + 0.01, explained.classes)
    with pytest.raises(AdditivityError, match="does not match the model"):
        check_additivity(shifted, "m")


def test_global_importances_are_mean_abs_shap_of_tree_explainer(model_dir: Path) -> None:
    import xgboost

    path = train_xgboost(model_dir / "xgb", RULE_1, seed=0, n=2000)
    frame = inputs(3000, 7).assign(target=0)  # extra columns are ignored
    importances = global_importances(path, frame, sample_size=500, seed=3)
    sample = frame.sample(n=500, random_state=3)[FEATURES].to_numpy()
    direct = shap.TreeExplainer(xgboost.Booster(model_file=str(path))).shap_values(sample)
    direct = np.abs(direct.astype(np.float64)).mean(0)  # shap returns float32 for XGBoost
    assert list(importances) == FEATURES
    np.testing.assert_allclose(list(importances.values()), direct, rtol=1e-9)
    # Rule 1 leans on x1, then x2, then x3; x4, x5 are noise.
    ranked = sorted(importances, key=importances.get, reverse=True)
    assert ranked[:3] == ["x1", "x2", "x3"]


@pytest.mark.slow
def test_permutation_explainer_for_a_linear_model_uses_the_baseline_background(tmp_path: Path) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    frame = inputs(1000, 0)
    model = LogisticRegression().fit(frame, labels(frame, RULE_1, 1))
    path = tmp_path / "linear.skops"
    path.write_bytes(skops.io.dumps(model))
    loaded = load_model(path)
    assert not loaded.tree
    background = inputs(300, 5).to_numpy()
    explainer = make_explainer(loaded, background)
    assert explainer.label == "permutation/probability" and len(explainer.background_hash) == 64
    X = inputs(8, 3).to_numpy()
    explained = explainer.explain(X)
    assert _additive(explained) < 1e-9
    # Same background subsample, same seed and permutation budget: shap run directly agrees.
    sub = background[np.sort(np.random.default_rng(0).choice(300, 100, replace=False))]
    f = lambda Z: model.predict_proba(pd.DataFrame(Z, columns=FEATURES))  # noqa: E731
    direct = shap.PermutationExplainer(f, shap.maskers.Independent(sub, max_samples=100), seed=0)
    expected = direct(X, max_evals=5 * (2 * 5 + 1), silent=True).values[:, :, 1]
    np.testing.assert_allclose(explained.values, expected, atol=1e-9)
