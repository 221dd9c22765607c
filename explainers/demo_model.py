"""The demo's model: a small LightGBM classifier trained on the generated data.

LightGBM is used because it takes string categories natively (as pandas
categoricals) and writes them into its text model file, so the explainers can map
logged category strings back to what the model saw.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["train_demo_model"]


def _model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series):
            columns[name] = series.astype("float64")
        elif pd.api.types.is_numeric_dtype(series):
            columns[name] = series.astype("float64")
        else:
            columns[name] = series.astype("string").astype("category")
    return pd.DataFrame(columns, index=frame.index)


def train_demo_model(
    frame: pd.DataFrame,
    target: str,
    path: str | Path,
    *,
    n_estimators: int = 100,
    seed: int = 0,
) -> Path:
    """Train a LightGBM model on ``frame`` and save it as a LightGBM text file.

    Parameters
    ----------
    frame
        Feature columns plus ``target``. Numbers and booleans are used as numbers,
        anything else as categories.
    target
        Label column: two distinct values train a binary classifier (the larger
        value, or ``"1"``/``True``, is the positive class), more a regressor when
        numeric.
    path
        Where to write the model; the suffix is set to ``.txt`` (LightGBM text).

    Returns
    -------
    Path
        The file written; load it with :func:`explainers.loading.load_model`.
    """
    import lightgbm

    if target not in frame.columns:
        raise ValueError(f"target column {target!r} not in the frame; columns: {list(frame.columns)}")
    X = _model_frame(frame.drop(columns=[target]))
    y = frame[target]
    options = dict(n_estimators=n_estimators, num_leaves=15, learning_rate=0.1,
                   random_state=seed, verbose=-1, n_jobs=1)
    labels = sorted(y.dropna().unique(), key=str)
    if len(labels) == 2:
        positive = labels[1]
        model = lightgbm.LGBMClassifier(**options).fit(X, (y == positive).astype(int))
    elif pd.api.types.is_numeric_dtype(y):
        model = lightgbm.LGBMRegressor(**options).fit(X, y.astype("float64"))
    else:
        model = lightgbm.LGBMClassifier(**options).fit(X, y.astype(str))
    path = Path(path).with_suffix(".txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.booster_.save_model(str(path))
    return path
