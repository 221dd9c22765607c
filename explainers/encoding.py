"""Turning logged feature values into the matrix a model was trained on.

Events carry numbers and strings by feature name; a model wants a float matrix in
its own column order. :class:`FeatureEncoder` does that mapping, column by column
(never per event):

* a numeric feature is copied (NaN where missing, which tree models route down
  their learned default branch);
* a categorical feature the model knows the categories of (LightGBM trained on
  pandas categoricals) becomes the category's index; an unseen category or a
  missing value becomes NaN;
* any other string is parsed as a number (``"true"``/``"false"`` as 1/0), NaN when
  it is not one;
* a feature the model needs but the event lacks is NaN (counted as missing by the
  drift statistics already).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from monitor.batch import PredictionBatch

__all__ = ["FeatureEncoder"]

_BOOLEANS = {"true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0}


class FeatureEncoder:
    """Maps batches and frames to a model's input matrix.

    Parameters
    ----------
    feature_names
        The model's input columns, in order.
    categories
        Categorical input → its categories (the model sees the index).

    Examples
    --------
    >>> import numpy as np
    >>> encoder = FeatureEncoder(["x", "colour"], {"colour": ["red", "blue"]})
    >>> encoder.from_frame(__import__("pandas").DataFrame({"colour": ["blue", "green"], "x": [1.5, None]}))
    array([[1.5, 1. ],
           [nan, nan]])
    """

    def __init__(self, feature_names: Sequence[str], categories: Mapping[str, Sequence[str]] | None = None) -> None:
        self.feature_names = list(feature_names)
        self.categories = {name: list(values) for name, values in (categories or {}).items()}
        self._codes = {
            name: {value: float(i) for i, value in enumerate(values)}
            for name, values in self.categories.items()
        }

    def __len__(self) -> int:
        return len(self.feature_names)

    def _encode_objects(self, name: str, values: np.ndarray) -> np.ndarray:
        series = pd.Series(values, dtype=object)
        codes = self._codes.get(name)
        if codes is not None:
            return series.map(lambda v: codes.get(str(v)) if v is not None else None).to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        mapped = series.map(lambda v: _BOOLEANS.get(v, v) if isinstance(v, str) else v)
        return pd.to_numeric(mapped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def from_batch(self, batch: PredictionBatch) -> np.ndarray:
        """The model's input matrix for every row of ``batch``, shape (rows, features)."""
        rows = len(batch)
        X = np.full((rows, len(self.feature_names)), np.nan)
        numeric = {name: j for j, name in enumerate(batch.numeric_names)}
        categorical = {name: j for j, name in enumerate(batch.categorical_names)}
        for k, name in enumerate(self.feature_names):
            if name in numeric:
                column = batch.numeric[:, numeric[name]]
                if name in self._codes:
                    # A categorical model input logged as a number: look the number up.
                    X[:, k] = self._encode_objects(name, np.array([_number_text(v) for v in column], dtype=object))
                else:
                    X[:, k] = column
            elif name in categorical:
                X[:, k] = self._encode_objects(name, batch.categorical[:, categorical[name]])
        return X

    def from_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input matrix for every row of a DataFrame (training data, say)."""
        X = np.full((len(frame), len(self.feature_names)), np.nan)
        for k, name in enumerate(self.feature_names):
            if name not in frame.columns:
                continue
            column = frame[name]
            if name in self._codes or not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                if pd.api.types.is_bool_dtype(column):
                    X[:, k] = column.astype(np.float64).to_numpy()
                    continue
                values = column.astype(object).where(column.notna(), None).to_numpy()
                X[:, k] = self._encode_objects(name, values)
            else:
                X[:, k] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return X

    def missing_features(self, available: Sequence[str]) -> list[str]:
        """Model inputs not among ``available`` (they will be NaN)."""
        present = set(available)
        return [name for name in self.feature_names if name not in present]


def _number_text(value: float) -> str | None:
    if np.isnan(value):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)
