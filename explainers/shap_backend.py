"""Choosing and running a SHAP explainer for a loaded model.

* Tree models (XGBoost, LightGBM, scikit-learn tree ensembles) get
  ``shap.TreeExplainer`` with ``feature_perturbation="tree_path_dependent"``: exact
  SHAP values, no background data needed, in the model's raw output space (log-odds
  for binary XGBoost/LightGBM; see :mod:`explainers.loading`).
* Every other model gets ``shap.PermutationExplainer`` over its output function,
  with an ``Independent`` masker on a background sample (the baseline's reference
  rows). It is ~100x slower: for small samples only.

Every explanation is checked for additivity before it is returned: for each row,
``base_value + sum(shap_values)`` must equal the model output computed
independently by the model library, within ``ADDITIVITY_TOLERANCE * max(1, |output|)``.
XGBoost evaluates trees in float32, so agreement is to about 1e-6 relative; the
tolerance leaves room for that and nothing more.

``shap`` is imported lazily: the daemon starts without it, and asking for an
explainer without it raises :class:`~explainers.errors.ShapUnavailable` saying what
to install.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers.errors import AdditivityError, ExplainError, ShapUnavailable
from explainers.loading import LoadedModel

__all__ = [
    "ADDITIVITY_TOLERANCE",
    "Explained",
    "ShapExplainer",
    "import_shap",
    "make_explainer",
]

ADDITIVITY_TOLERANCE = 1e-4
# Background rows kept for the permutation explainer: SHAP's own guidance is that
# 50-100 rows summarise a background well; cost grows linearly with it.
MAX_BACKGROUND = 100
# Antithetic permutations per row for the permutation explainer. Additivity holds
# exactly for any number; more permutations only reduce the variance of each value.
PERMUTATIONS = 5


def import_shap() -> Any:
    """Import ``shap`` or explain how to get it."""
    try:
        import shap
    except ImportError as exc:
        raise ShapUnavailable(
            "explanations need the optional 'shap' package: pip install 'driftd[explain]' "
            "(or set explain.enabled: false)"
        ) from exc
    return shap


@dataclass(frozen=True, slots=True)
class Explained:
    """SHAP values of a block of rows, for one output column per row.

    Attributes
    ----------
    values
        Shape (rows, features).
    base_values, outputs
        Shape (rows,): the expected output and the model output; additivity means
        ``base_values + values.sum(1) == outputs``.
    classes
        Output column explained for each row (0 for single-output models).
    """

    values: np.ndarray
    base_values: np.ndarray
    outputs: np.ndarray
    classes: np.ndarray


class ShapExplainer:
    """One model's SHAP explainer, reused for every block of rows.

    Parameters
    ----------
    loaded
        The model.
    background
        Background rows (model input matrix) for the permutation explainer; ignored
        for tree models.
    seed
        Seed for the background subsample and the permutations.
    """

    def __init__(self, loaded: LoadedModel, background: np.ndarray | None = None, seed: int = 0) -> None:
        shap = import_shap()
        self.loaded = loaded
        self.output_space = loaded.output_space
        self.seed = seed
        if loaded.tree:
            self.kind = "tree"
            self.background_hash = ""
            self._explainer = shap.TreeExplainer(
                loaded.model, feature_perturbation="tree_path_dependent", model_output="raw"
            )
            return
        if background is None or len(background) == 0:
            raise ExplainError(
                f"model {loaded.name!r} is not a tree model, so it needs a background sample "
                "for the permutation explainer: give it a baseline with reference rows"
            )
        background = np.asarray(background, dtype=np.float64)
        if len(background) > MAX_BACKGROUND:
            rng = np.random.default_rng(seed)
            background = background[np.sort(rng.choice(len(background), MAX_BACKGROUND, replace=False))]
        self.kind = "permutation"
        self.background_hash = hashlib.sha256(np.ascontiguousarray(background).tobytes()).hexdigest()
        masker = shap.maskers.Independent(background, max_samples=len(background))
        self._explainer = shap.PermutationExplainer(loaded.output, masker, seed=seed)

    @property
    def label(self) -> str:
        """``<explainer>/<output space>``, e.g. ``tree/log_odds`` (stored with each row)."""
        return f"{self.kind}/{self.output_space}"

    def explain(self, X: np.ndarray, check: bool = True) -> Explained:
        """SHAP values of the rows of ``X`` (the model's input matrix).

        Raises
        ------
        AdditivityError
            When ``check`` and base value + Σ SHAP differs from the model output.
        """
        X = np.asarray(X, dtype=np.float64)
        rows, n_features = X.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.kind == "tree":
                result = self._explainer(X, check_additivity=False)
            else:
                result = self._explainer(X, max_evals=PERMUTATIONS * (2 * n_features + 1), silent=True)
        values = np.asarray(result.values, dtype=np.float64).reshape(rows, n_features, -1)
        outputs_per_row = values.shape[2]
        base = np.asarray(result.base_values, dtype=np.float64)
        if base.size == rows * outputs_per_row:
            base = base.reshape(rows, outputs_per_row)
        else:  # one expected value for all rows
            base = np.broadcast_to(base.reshape(1, outputs_per_row), (rows, outputs_per_row))
        outputs = self.loaded.output(X)
        if outputs.shape[1] != values.shape[2]:
            raise ExplainError(
                f"model {self.loaded.name!r}: SHAP returned {values.shape[2]} outputs but the "
                f"model has {outputs.shape[1]}"
            )
        classes = self.loaded.explained_class(outputs)
        pick = np.arange(rows)
        explained = Explained(
            values=values[pick, :, classes],
            base_values=np.ascontiguousarray(base[pick, classes]),
            outputs=outputs[pick, classes],
            classes=classes,
        )
        if check:
            check_additivity(explained, self.loaded.name)
        return explained


def check_additivity(explained: Explained, model: str = "model") -> None:
    """Raise :class:`AdditivityError` unless base value + Σ SHAP = output for every row."""
    total = explained.base_values + explained.values.sum(axis=1)
    error = np.abs(total - explained.outputs)
    allowed = ADDITIVITY_TOLERANCE * np.maximum(1.0, np.abs(explained.outputs))
    if np.any(error > allowed):
        worst = int(np.argmax(error - allowed))
        raise AdditivityError(
            f"model {model!r}: base value + sum of SHAP values = {total[worst]:.6g} but the model "
            f"output is {explained.outputs[worst]:.6g} (row {worst}); the explainer does not "
            "match the model"
        )


def make_explainer(loaded: LoadedModel, background: np.ndarray | None = None, seed: int = 0) -> ShapExplainer:
    """The explainer for ``loaded``: TreeExplainer for trees, else permutation."""
    return ShapExplainer(loaded, background, seed)
