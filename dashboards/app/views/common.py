"""Helpers shared by the pages: navigation through query parameters, formatting."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

__all__ = ["EMPTY_STORE", "fmt_number", "fmt_time", "navigate", "time_param"]

EMPTY_STORE = (
    "The store holds no results yet. Windows appear here as the daemon closes them "
    "(every `windows.size_seconds`): start it with `driftd run --config driftd.yaml`, "
    "or run `driftd demo` to see the app on simulated traffic. Check that `store.url` "
    "in driftd.yaml points at the store the daemon writes to."
)


def navigate(**params: Any) -> None:
    """Open another page: replace the query parameters (a shareable URL) and re-run."""
    st.query_params.clear()
    st.query_params.update({k: str(v) for k, v in params.items() if v is not None})
    st.rerun()


def time_param(value: datetime) -> str:
    """A time as it goes into a link (ISO 8601, UTC)."""
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_time(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "—"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def fmt_number(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(number):
        return "—"
    return f"{number:.{digits}f}"
