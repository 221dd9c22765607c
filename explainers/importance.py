"""Global feature importances for a baseline: mean |SHAP| over a training sample.

``driftd baseline build --model-file`` calls :func:`global_importances` and stores the
result in ``Baseline.importances``; attribution drift compares each window's mean
|SHAP| against it. Both come from the same explainer in the same output space (see
:mod:`explainers.shap_backend`), so the numbers are directly comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from explainers.encoding import FeatureEncoder
from explainers.errors import ModelLoadError
from explainers.loading import LoadedModel, load_model
from explainers.shap_backend import make_explainer

__all__ = ["global_importances"]


def global_importances(
    model: LoadedModel | str | Path,
    baseline_frame: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    sample_size: int | None = None,
    seed: int = 0,
    sha256: str | None = None,
    trust_pickle: bool = False,
) -> dict[str, float]:
    """Mean |SHAP| per feature over (a sample of) a baseline frame.

    Parameters
    ----------
    model
        A model file (loaded with :func:`~explainers.loading.load_model`) or a
        loaded model.
    baseline_frame
        Training or validation rows; extra columns (target, prediction) are ignored.
    features
        Input columns in the model's order, for model files that do not name them.
    sample_size
        Rows explained: 2000 for tree models, 200 for the (slow) permutation
        explainer by default; drawn without replacement with ``seed``.
    sha256, trust_pickle
        Passed to the loader when ``model`` is a path.

    Returns
    -------
    dict
        Feature → mean |SHAP| in the explainer's output space, in the model's order.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(
        model, name=Path(model).stem, sha256=sha256, trust_pickle=trust_pickle
    )
    names = list(loaded.feature_names or features or [])
    if not names:
        raise ModelLoadError(loaded.name, loaded.path, "the file does not name its input features; "
                             "pass features=[...] in the model's column order")
    absent = [name for name in names if name not in baseline_frame.columns]
    if absent:
        raise ModelLoadError(loaded.name, loaded.path, f"the model's inputs {absent} are not columns "
                             "of the baseline data")
    encoder = FeatureEncoder(names, loaded.categories)
    limit = sample_size or (2000 if loaded.tree else 200)
    frame = baseline_frame
    if len(frame) > limit:
        frame = frame.sample(n=limit, random_state=seed)
    X = encoder.from_frame(frame)
    background = None
    if not loaded.tree:
        background = encoder.from_frame(baseline_frame.sample(n=min(100, len(baseline_frame)), random_state=seed + 1))
    explained = make_explainer(loaded, background, seed=seed).explain(X)
    mean_abs = np.abs(explained.values).mean(axis=0)
    return {name: float(value) for name, value in zip(names, mean_abs)}
