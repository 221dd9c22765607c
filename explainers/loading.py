"""Loading model files safely, and computing the model output that SHAP explains.

Supported formats, detected from the file's content (and suffix for pickles):

============================  ==========================================  ==============
format                        how it is read                              safe?
============================  ==========================================  ==============
XGBoost JSON / UBJ            ``xgboost.Booster.load_model`` (a parser)   yes
LightGBM text model           ``lightgbm.Booster(model_str=...)``         yes
scikit-learn ``.skops``       ``skops.io.loads`` with an explicit list    yes
                              of trusted types
pickle / joblib               ``pickle`` / ``joblib``                     only with
                                                                          ``trust_pickle``
============================  ==========================================  ==============

Unpickling runs arbitrary code, so a pickle or joblib file is refused before a
single byte of it is deserialised unless the model's settings say
``trust_pickle: true``. The file is read once; the optional sha256 pin is checked on
those bytes and the same bytes are parsed, so the file cannot change between the
check and the load.

The *explained output* of a model is what base value + Σ SHAP adds up to:

* XGBoost and LightGBM: the raw margin (``output_margin=True`` / ``raw_score=True``),
  i.e. log-odds for binary classifiers, one margin per class for multiclass, and the
  prediction itself for squared-error regression;
* scikit-learn tree ensembles: what ``shap.TreeExplainer`` explains for them
  (class probabilities for forests and single trees, log-odds for gradient
  boosting, the prediction for regressors);
* other scikit-learn models: ``predict_proba`` (classifiers) or ``predict``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from explainers.errors import ModelLoadError

__all__ = [
    "DEFAULT_SKOPS_TRUSTED_TYPES",
    "LoadedModel",
    "file_sha256",
    "load_model",
]

# Types skops does not trust by default but every scikit-learn tree model contains.
DEFAULT_SKOPS_TRUSTED_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
# scikit-learn estimators shap.TreeExplainer explains exactly, and the output it explains.
_SKLEARN_TREES = {
    "DecisionTreeClassifier": "probability",
    "RandomForestClassifier": "probability",
    "ExtraTreesClassifier": "probability",
    "GradientBoostingClassifier": "log_odds",
    "DecisionTreeRegressor": "raw",
    "RandomForestRegressor": "raw",
    "ExtraTreesRegressor": "raw",
    "GradientBoostingRegressor": "raw",
}

Kind = Literal["xgboost", "lightgbm", "sklearn"]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (what ``model_sha256`` pins)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(slots=True)
class LoadedModel:
    """A model read from a file, with what the explainers need to know about it.

    Attributes
    ----------
    name, path, sha256
        The configured model name, its file and the sha256 of the bytes loaded.
    kind
        ``"xgboost"``, ``"lightgbm"`` or ``"sklearn"``.
    model
        The object SHAP explains: a Booster, or a scikit-learn estimator.
    feature_names
        Input columns in the model's order, or None when the file does not name them.
    categories
        Categorical input → its categories; the model sees the category's index
        (LightGBM models trained on pandas categoricals).
    output_space
        What the explained output is: ``"log_odds"``, ``"probability"`` or ``"raw"``.
    n_outputs
        Columns of :meth:`output` (1, or one per class).
    tree
        Whether ``shap.TreeExplainer`` explains this model exactly.
    """

    name: str
    path: Path
    sha256: str
    kind: Kind
    model: Any
    feature_names: list[str] | None
    output_space: str
    n_outputs: int = 1
    tree: bool = True
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_features(self) -> int | None:
        if self.feature_names is not None:
            return len(self.feature_names)
        if self.kind == "xgboost":
            return int(self.model.num_features())
        if self.kind == "lightgbm":
            return int(self.model.num_feature())
        return getattr(self.model, "n_features_in_", None)

    def output(self, X: np.ndarray) -> np.ndarray:
        """The explained output of the rows of ``X``, shape (rows, n_outputs), float64."""
        X = np.asarray(X, dtype=np.float64)
        if self.kind == "xgboost":
            import xgboost

            matrix = xgboost.DMatrix(X, missing=np.nan)
            out = self.model.predict(matrix, output_margin=True, validate_features=False)
        elif self.kind == "lightgbm":
            out = self.model.predict(X, raw_score=True)
        else:
            out = self._sklearn_output(X)
        out = np.asarray(out, dtype=np.float64)
        return out.reshape(len(X), -1)

    def explained_class(self, outputs: np.ndarray) -> np.ndarray:
        """Which output column each row's explanation is for.

        One output: column 0. A binary probability pair: the positive class (1). More
        classes: the predicted class (largest output).
        """
        rows = len(outputs)
        if outputs.shape[1] == 1:
            return np.zeros(rows, dtype=np.int64)
        if outputs.shape[1] == 2 and self.output_space == "probability":
            return np.ones(rows, dtype=np.int64)
        return np.argmax(outputs, axis=1)

    def _sklearn_output(self, X: np.ndarray) -> np.ndarray:
        estimator = self.model
        frame: Any = X
        if self.feature_names is not None and hasattr(estimator, "feature_names_in_"):
            import pandas as pd

            frame = pd.DataFrame(X, columns=self.feature_names)
        if self.output_space == "probability":
            return estimator.predict_proba(frame)
        if self.output_space == "log_odds":
            return estimator.decision_function(frame)
        return estimator.predict(frame)


def load_model(
    path: str | Path,
    *,
    name: str = "model",
    sha256: str | None = None,
    trust_pickle: bool = False,
    trusted_types: tuple[str, ...] | list[str] = (),
) -> LoadedModel:
    """Read a model file, refusing anything unsafe or not matching its pin.

    Parameters
    ----------
    path
        XGBoost ``.json``/``.ubj``, LightGBM text, scikit-learn ``.skops``, or (with
        ``trust_pickle``) ``.pkl``/``.pickle``/``.joblib``.
    name
        The configured model name, used in error messages.
    sha256
        Expected hex sha256 of the file; a different file is refused.
    trust_pickle
        Allow pickle and joblib files. Unpickling runs code from the file: only set
        it for files you produced.
    trusted_types
        Extra types a ``.skops`` file may contain, beyond skops' defaults and
        :data:`DEFAULT_SKOPS_TRUSTED_TYPES`.

    Raises
    ------
    ModelLoadError
        When the file is missing, unsupported, unsafe, corrupt or not the pinned file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _PICKLE_SUFFIXES and not trust_pickle:
        # Refused before reading: nothing of the file is deserialised.
        raise ModelLoadError(
            name, path,
            "pickle/joblib files can run arbitrary code when loaded; save the model as "
            "XGBoost JSON/UBJ, LightGBM text or skops, or set trust_pickle: true for "
            "this model if you produced the file yourself",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(name, path, exc.strerror or str(exc)) from None
    actual = hashlib.sha256(raw).hexdigest()
    if sha256 is not None and actual != sha256.lower():
        raise ModelLoadError(
            name, path,
            f"sha256 {actual} does not match the pinned model_sha256 {sha256.lower()}; "
            "refusing a model file that is not the one configured",
        )
    head = raw[:16]
    try:
        if suffix in _PICKLE_SUFFIXES or head[:1] == b"\x80":
            if not trust_pickle:
                raise ModelLoadError(
                    name, path,
                    "the file is a pickle (it starts with a pickle protocol header); "
                    "pickles are only loaded with trust_pickle: true",
                )
            return _from_object(_unpickle(raw, suffix), name, path, actual)
        if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
            return _lightgbm(raw, name, path, actual)
        if suffix in (".json", ".ubj"):
            return _xgboost(raw, name, path, actual)
        if suffix == ".skops" or head.startswith(b"PK\x03\x04"):
            return _skops(raw, name, path, actual, trusted_types)
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(
            name, path, f"{exc.name or exc} is not installed; install driftd[explain]"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad model file
        raise ModelLoadError(name, path, f"not a valid model file ({type(exc).__name__}: {exc})") from None
    raise ModelLoadError(
        name, path,
        "unsupported model format; use XGBoost .json/.ubj, LightGBM text (.txt), "
        "scikit-learn .skops, or pickle/joblib with trust_pickle: true",
    )


def _unpickle(raw: bytes, suffix: str) -> Any:
    if suffix == ".joblib":
        import joblib

        return joblib.load(io.BytesIO(raw))
    import pickle

    return pickle.loads(raw)  # noqa: S301 - only reached with trust_pickle


def _xgboost(raw: bytes, name: str, path: Path, sha: str) -> LoadedModel:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    return _from_xgboost(booster, name, path, sha)


def _from_xgboost(booster: Any, name: str, path: Path, sha: str) -> LoadedModel:
    config = json.loads(booster.save_config())["learner"]
    objective = config["objective"]["name"]
    n_class = int(config["learner_model_param"].get("num_class", "0") or 0)
    space = "log_odds" if objective in ("binary:logistic", "binary:logitraw") else "raw"
    return LoadedModel(
        name=name, path=path, sha256=sha, kind="xgboost", model=booster,
        feature_names=list(booster.feature_names) if booster.feature_names else None,
        output_space=space, n_outputs=max(1, n_class),
    )


def _lightgbm(raw: bytes, name: str, path: Path, sha: str) -> LoadedModel:
    import lightgbm

    text = raw.decode("utf-8")
    booster = lightgbm.Booster(model_str=text)
    # A Booster read from a string does not parse its parameters section back.
    found = re.search(r"^\[categorical_feature: ([0-9, ]*)\]$", text, re.MULTILINE)
    indices = [int(i) for i in found.group(1).split(",") if i.strip()] if found else []
    return _from_lightgbm(booster, name, path, sha, indices)


def _from_lightgbm(
    booster: Any, name: str, path: Path, sha: str, indices: list[int] | None = None
) -> LoadedModel:
    names = list(booster.feature_name())
    if all(n == f"Column_{i}" for i, n in enumerate(names)):
        names = None  # trained on an unnamed array
    header = booster.model_to_string(num_iteration=1).split("\n\n", 1)[0]
    fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    objective = fields.get("objective", "")
    n_class = int(fields.get("num_class", "1") or 1)
    categories: dict[str, list[str]] = {}
    if indices is None:
        indices = booster.params.get("categorical_feature") or []
        if isinstance(indices, (int, str)):
            indices = [indices]
    # pandas_categorical lists the category values of the pandas categorical columns,
    # in column order; LightGBM saw each value's index.
    for index, values in zip(sorted(int(i) for i in indices), booster.pandas_categorical or []):
        if names is not None:
            categories[names[index]] = [str(v) for v in values]
    return LoadedModel(
        name=name, path=path, sha256=sha, kind="lightgbm", model=booster,
        feature_names=names, categories=categories,
        output_space="log_odds" if objective.startswith("binary") else "raw",
        n_outputs=n_class if objective.startswith(("multiclass", "softmax", "multiclassova")) else 1,
    )


def _skops(raw: bytes, name: str, path: Path, sha: str, trusted: tuple[str, ...] | list[str]) -> LoadedModel:
    import skops.io

    allowed = set(DEFAULT_SKOPS_TRUSTED_TYPES) | set(trusted)
    untrusted = skops.io.get_untrusted_types(data=raw)
    refused = sorted(t for t in untrusted if t not in allowed)
    if refused:
        raise ModelLoadError(
            name, path,
            f"the skops file contains types that are not trusted: {refused}; add them to "
            "the model's trusted types only if you know what they are",
        )
    estimator = skops.io.loads(raw, trusted=sorted(set(untrusted)))
    return _from_object(estimator, name, path, sha)


def _from_object(obj: Any, name: str, path: Path, sha: str) -> LoadedModel:
    """A deserialised estimator: native boosters of sklearn wrappers, else sklearn."""
    try:
        import xgboost

        if isinstance(obj, xgboost.Booster):
            return _from_xgboost(obj, name, path, sha)
        if isinstance(obj, xgboost.XGBModel):
            return _from_xgboost(obj.get_booster(), name, path, sha)
    except ImportError:
        pass
    try:
        import lightgbm

        if isinstance(obj, lightgbm.Booster):
            return _from_lightgbm(obj, name, path, sha)
        if isinstance(obj, lightgbm.LGBMModel):
            return _from_lightgbm(obj.booster_, name, path, sha)
    except ImportError:
        pass
    if not hasattr(obj, "predict"):
        raise ModelLoadError(name, path, f"the file holds a {type(obj).__name__}, not a model with predict()")
    cls = type(obj).__name__
    names = [str(n) for n in obj.feature_names_in_] if hasattr(obj, "feature_names_in_") else None
    classes = getattr(obj, "classes_", None)
    if cls in _SKLEARN_TREES:
        space = _SKLEARN_TREES[cls]
        tree = True
    else:
        space = "probability" if hasattr(obj, "predict_proba") and classes is not None else "raw"
        tree = False
    if classes is not None and space == "log_odds":
        n_outputs = 1 if len(classes) == 2 else len(classes)
    elif classes is not None and space == "probability":
        n_outputs = len(classes)
    else:
        n_outputs = 1
    return LoadedModel(
        name=name, path=path, sha256=sha, kind="sklearn", model=obj, feature_names=names,
        output_space=space, n_outputs=n_outputs, tree=tree,
    )
