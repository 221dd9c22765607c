"""columnarise: feature maps to numpy columns with one rule per value, whatever the batch."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.decode import Columns, _Group, columnarise
from monitor.events import category_text

NUMERIC, CATEGORICAL = ["a", "b", "c"], ["k", "m"]
values = st.one_of(
    st.floats(allow_nan=False), st.integers(-(10**400), 10**400), st.booleans(), st.none(),
    st.sampled_from(["1.5", "abc", "", "nan"]), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
feature_maps = st.dictionaries(st.sampled_from(NUMERIC + CATEGORICAL + ["extra"]), values)


def _expected_number(value) -> tuple[float, int]:
    """The rule: numbers and booleans are values, null and absent are missing, the rest a type error."""
    if value is None:
        return math.nan, 0
    if type(value) in (int, float, bool):
        try:
            number = float(value)
        except OverflowError:
            return math.nan, 1
        return (number, 0) if math.isfinite(number) else (math.nan, 1)
    return math.nan, 1


def _group(maps: list[dict]) -> _Group:
    group = _Group()
    for i, features in enumerate(maps):
        group.ids.append(f"p{i}")
        group.times.append(float(i))
        group.segments.append("")
        group.features.append(features)
        group.predictions.append(1)
        group.scores.append(None)
        group.positions.append(i)
        group.indices.append(i)
    return group


COLUMNS = Columns(NUMERIC, CATEGORICAL, positive_class="1", numeric_prediction=False)


@settings(max_examples=150, deadline=None)
@given(maps=st.lists(feature_maps, min_size=1, max_size=30), cut=st.integers(0, 30))
def test_every_value_follows_one_rule_and_batching_does_not_matter(maps: list[dict], cut: int) -> None:
    batch, errors = columnarise("m", "v1", _group(maps), COLUMNS)
    expected_errors = 0
    for i, features in enumerate(maps):
        for j, name in enumerate(NUMERIC):
            number, error = _expected_number(features.get(name))
            expected_errors += error
            assert (math.isnan(number) and math.isnan(batch.numeric[i, j])) or batch.numeric[i, j] == number
        for j, name in enumerate(CATEGORICAL):
            value = features.get(name)
            nested = isinstance(value, (list, dict))
            expected_errors += nested
            assert batch.categorical[i, j] == (None if nested else value) or (value is None and batch.categorical[i, j] is None)
    assert errors == expected_errors
    # The same events cut into two batches give the same values and the same error count.
    cut = min(cut, len(maps))
    first, first_errors = columnarise("m", "v1", _group(maps[:cut]), COLUMNS)
    second, second_errors = columnarise("m", "v1", _group(maps[cut:]), COLUMNS)
    np.testing.assert_array_equal(np.vstack([first.numeric, second.numeric]), batch.numeric)
    assert first_errors + second_errors == errors


def test_categorical_predictions_read_as_category_text() -> None:
    group = _group([{}, {}, {}])
    group.predictions[:] = [True, 1.0, "yes"]
    batch, _ = columnarise("m", "v1", group, COLUMNS)
    assert batch.predictions.tolist() == [category_text(True), "1", "yes"]
