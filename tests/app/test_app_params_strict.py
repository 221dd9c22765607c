"""Deep-link parameters are ASCII and bounded: anything else is a ParamError with a
message, never an OverflowError or ValueError out of int(), float() or timedelta."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboards.app.params import ParamError, parse_route

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "params",
    [
        {"incident": "99999999999999999999999"},  # OverflowError in SQLite/int64 before
        {"incident": "9" * 19},
        {"incident": "²"},  # str.isdigit() accepts superscripts; int() does not
        {"incident": "٣"},  # Arabic-Indic digit: isdigit and int() accept it
        {"incident": "１２"},  # full-width digits
        {"incident": "+7"},
        {"incident": "7.0"},
        {"incident": "0"},
        {"incident": "-1"},
        {"model": "m", "from": "now-99999999d"},  # timedelta overflow before
        {"model": "m", "from": "now-٣h"},
        {"model": "m", "from": "1e400"},
        {"model": "m", "from": "nan"},
        {"model": "m", "from": "-5"},
        {"model": "m", "from": "١٧٣٢٣٥٠٠٠٠"},
        {"model": "m", "from": "9" * 40},
        {"model": "m", "to": "9999-12-31T23:59:59-01:00"},  # past year 9999 in UTC
    ],
)
def test_bad_values_give_a_message(params: dict) -> None:
    with pytest.raises(ParamError) as error:
        parse_route(params, NOW)
    name = next(iter(k for k in params if k != "model"))
    assert f"`{name}`" in str(error.value)


def test_good_values_still_work() -> None:
    assert parse_route({"incident": "42"}, NOW).incident_id == 42
    assert parse_route({"incident": "9" * 18}, NOW).incident_id == int("9" * 18)
    assert parse_route({"incident": " 7 "}, NOW).incident_id == 7


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["page", "incident", "model", "version", "segment", "feature", "from", "to"]
        ),
        st.text(max_size=40),
        max_size=6,
    )
)
def test_any_query_string_is_a_route_or_a_param_error(params: dict) -> None:
    try:
        parse_route(params, NOW)
    except ParamError:
        pass
