"""Model loading: native formats, skops with trusted types, pickles only when trusted, sha256 pins."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.explainers.explain_models import FEATURES, RULE_1, inputs, labels, train_lightgbm, train_xgboost

from explainers import ModelLoadError, file_sha256, load_model


class _WritesMarker:
    """Unpickling this object creates a file: what a malicious model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _halve(X):
    return X / 2


@pytest.fixture
def malicious(tmp_path: Path) -> tuple[Path, Path, bytes]:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_WritesMarker(marker))
    return tmp_path, marker, payload


@pytest.mark.parametrize("name", ["model.pkl", "model.pickle", "model.joblib", "model.json", "model.bin"])
def test_malicious_pickle_is_refused_without_trust_pickle(malicious, name: str) -> None:
    directory, marker, payload = malicious
    path = directory / name
    path.write_bytes(payload)
    with pytest.raises(ModelLoadError, match="trust_pickle") as info:
        load_model(path, name="fraud")
    assert info.value.model == "fraud"
    assert not marker.exists()


def test_the_malicious_pickle_really_runs_code_when_trusted(malicious) -> None:
    # The control: the same file with trust_pickle does execute, so the refusal above
    # is what kept the marker from being written.
    directory, marker, payload = malicious
    path = directory / "model.pkl"
    path.write_bytes(payload)
    with pytest.raises(ModelLoadError):  # os.system's return value is not a model
        load_model(path, trust_pickle=True)
    assert marker.exists()


def test_trusted_pickle_of_a_real_model_loads(tmp_path: Path) -> None:
    import xgboost

    frame = inputs(500, 0)
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, labels(frame, RULE_1, 1))
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    loaded = load_model(path, trust_pickle=True)
    assert loaded.kind == "xgboost" and loaded.feature_names == FEATURES


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_native_formats(model_dir: Path, suffix: str) -> None:
    path = train_xgboost(model_dir / "xgb", RULE_1, seed=0, n=1000, suffix=suffix)
    loaded = load_model(path, name="m")
    assert loaded.kind == "xgboost"
    assert loaded.feature_names == FEATURES
    assert loaded.output_space == "log_odds" and loaded.n_outputs == 1 and loaded.tree
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    X = inputs(10, 5).to_numpy()
    # Margin space: the sigmoid of the output is the predicted probability.
    import xgboost

    probability = loaded.model.predict(xgboost.DMatrix(X, feature_names=FEATURES))
    np.testing.assert_allclose(1 / (1 + np.exp(-loaded.output(X)[:, 0])), probability, rtol=1e-5)


def test_lightgbm_text_keeps_categories(model_dir: Path) -> None:
    path = train_lightgbm(model_dir / "lgb")
    loaded = load_model(path)
    assert loaded.kind == "lightgbm" and loaded.output_space == "log_odds"
    assert loaded.feature_names == ["x1", "x2", "colour"]
    assert loaded.categories == {"colour": ["blue", "green", "red"]}


def test_skops_loads_tree_models_and_refuses_untrusted_types(tmp_path: Path) -> None:
    import skops.io
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression

    frame = inputs(300, 0)
    y = labels(frame, RULE_1, 1)
    forest = tmp_path / "forest.skops"
    forest.write_bytes(skops.io.dumps(RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y)))
    loaded = load_model(forest)
    assert loaded.kind == "sklearn" and loaded.tree and loaded.output_space == "probability"
    assert loaded.feature_names == FEATURES

    # A pipeline calling a function of ours: skops does not trust it by default.
    risky = make_pipeline(FunctionTransformer(_halve), LogisticRegression()).fit(frame, y)
    path = tmp_path / "risky.skops"
    path.write_bytes(skops.io.dumps(risky))
    untrusted = skops.io.get_untrusted_types(file=path)
    assert untrusted, "the test needs a file with untrusted types"
    with pytest.raises(ModelLoadError, match="not trusted"):
        load_model(path)
    loaded = load_model(path, trusted_types=untrusted)
    assert loaded.kind == "sklearn" and not loaded.tree


def test_sha256_pin(model_dir: Path) -> None:
    path = train_xgboost(model_dir / "pinned", RULE_1, seed=0, n=500)
    digest = file_sha256(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_model(path, sha256=digest).sha256 == digest
    wrong = "0" * 64
    with pytest.raises(ModelLoadError, match="does not match the pinned model_sha256"):
        load_model(path, name="pinned", sha256=wrong)


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="No such file"):
        load_model(tmp_path / "missing.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"learner": ')
    with pytest.raises(ModelLoadError, match="not a valid model file"):
        load_model(corrupt)
    truncated = tmp_path / "truncated.txt"
    truncated.write_text("tree\nversion=v4\nnum_class=1\n")
    with pytest.raises(ModelLoadError, match="not a valid model file"):
        load_model(truncated)
    unknown = tmp_path / "model.onnx"
    unknown.write_bytes(b"\x08\x07onnx")
    with pytest.raises(ModelLoadError, match="unsupported model format"):
        load_model(unknown)
