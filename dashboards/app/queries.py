"""The app's view of the store: the store's read layer, cached and shaped as frames.

No SQL here: every query is a method of :class:`monitor.store.Store`
(``monitor/store/reads.py``, ``explanations.py``, ``incidents.py``), the same
read layer the rest of driftd uses. This module only caches results with a short
TTL, so that a page re-run by a widget does not hit the database again while an
incident that is still developing shows up within :data:`TTL_SECONDS`, and turns
rows into pandas frames (what ``st.cache_data`` can copy). Store errors become
:class:`StoreUnavailable` with the fix in the message.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import streamlit as st

from dashboards.app import CONFIG_ENV
from dashboards.app.params import AppError
from monitor.store import Store, StoreError, open_store
from monitor.store.explanations import EXPLANATION_LIST_COLUMNS
from monitor.store.incidents import INCIDENT_COLUMNS, NOTE_ACTIONS, NoteRejected
from monitor.store.reads import LIGHT_WINDOW_COLUMNS

__all__ = [
    "NOTE_ACTIONS",
    "TTL_SECONDS",
    "StoreUnavailable",
    "add_note",
    "baseline_profile",
    "clear_cache",
    "drift_heatmap",
    "explanation",
    "explanations",
    "feature_results",
    "findings",
    "get_store",
    "incident",
    "incidents",
    "model_health",
    "model_versions",
    "models",
    "settings",
    "store_status",
    "time_bounds",
    "windows",
]

TTL_SECONDS = 30
# Explanations listed per page; the search box narrows by prediction id.
MAX_EXPLANATIONS = 200
# Time columns, converted even when a frame is empty or its first values are missing.
_TIMES = frozenset(
    {
        "window_start",
        "window_end",
        "closed_at",
        "updated_at",
        "starts_at",
        "ends_at",
        "created_at",
        "event_time",
        "since",
        "labelled_window_start",
    }
)


class StoreUnavailable(AppError):
    """The store cannot be reached or holds no driftd tables."""


@st.cache_resource(show_spinner=False)
def get_store(url: str) -> Store:
    """One store (connection pool) per URL for the app's lifetime; never migrates."""
    try:
        return open_store(url, create=False)
    except StoreError as exc:
        raise StoreUnavailable(str(exc)) from None


def _read(url: str, method: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return getattr(get_store(url), method)(*args, **kwargs)
    except NoteRejected as exc:  # the user's input, not the store: shown as it is
        raise AppError(str(exc)) from None
    except StoreError as exc:
        text = str(exc)
        if "no such table" in text or ("does not exist" in text and "column" not in text):
            text = (
                f"the store has no driftd tables ({text}); create them with `driftd store migrate`"
            )
        elif "no such column" in text or "column" in text and "does not exist" in text:
            text = (
                f"the store's schema is older than this driftd ({text}); upgrade it with "
                "`driftd store upgrade` (the daemon does on start)"
            )
        raise StoreUnavailable(text) from None


def _frame(rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Rows as a frame with ``columns``; columns of datetimes become UTC timestamps."""
    frame = pd.DataFrame(rows, columns=list(columns))
    for column in frame.columns:
        if column in _TIMES or any(isinstance(v, datetime) for v in frame[column].head(20)):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def clear_cache() -> None:
    """Forget cached results (after a write, or from the refresh button)."""
    st.cache_data.clear()


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def settings() -> Any:
    """The driftd settings the app was started with (``driftd app --config``), else the defaults."""
    from monitor.config import ConfigError, load_settings

    try:
        return load_settings(os.environ.get(CONFIG_ENV) or None)
    except ConfigError:
        return load_settings()


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def store_status(url: str) -> dict[str, Any]:
    """Whether the store has anything to show: window and incident counts, newest window."""
    return _read(url, "store_status")


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def models(url: str) -> list[str]:
    """Model names that have windows or incidents."""
    return _read(url, "model_names")


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def model_versions(url: str, model: str) -> list[str]:
    """Versions of ``model`` with windows, newest window first."""
    return _read(url, "model_versions", model)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def time_bounds(url: str, model: str) -> tuple[datetime | None, datetime | None]:
    """First window start and last window end of ``model``."""
    return _read(url, "time_bounds", model)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _health_rows(url: str, coverage_hours: float) -> list[dict[str, Any]]:
    return _read(url, "model_health", coverage_hours)


def model_health(url: str, coverage_hours: float = 24.0) -> pd.DataFrame:
    """The newest window of every (model, version, segment), its newest labelled window
    (``labelled_*`` columns) and label coverage (see ``Store.model_health``)."""
    rows = _health_rows(url, coverage_hours)
    if not rows:
        return pd.DataFrame(
            columns=["model", "version", "segment", "window_start", "label_coverage"]
        )
    return _frame(rows, list(rows[0]))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def findings(url: str, now: datetime | None = None) -> pd.DataFrame:
    """What is wrong right now, one row per finding (see :mod:`monitor.findings`)."""
    from monitor.findings import FINDING_COLUMNS, find_problems

    try:
        found = find_problems(get_store(url), settings(), now=now, health=_health_rows(url, 24.0))
    except StoreError as exc:
        raise StoreUnavailable(str(exc)) from None
    return _frame([f.as_row() for f in found], FINDING_COLUMNS)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def incidents(
    url: str,
    status: tuple[str, ...] | None = None,
    model: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
) -> pd.DataFrame:
    """Incidents, newest first; optionally by status, model and overlap with [start, end)."""
    return _frame(_read(url, "incident_rows", status, model, start, end, limit), INCIDENT_COLUMNS)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def incident(url: str, incident_id: int) -> dict[str, Any] | None:
    """One incident with its notes (oldest first), or None."""
    return _read(url, "incident_detail", incident_id)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def windows(
    url: str,
    model: str,
    version: str | None = None,
    segment: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    light: bool = False,
) -> pd.DataFrame:
    """Windows of a model starting in [start, end), oldest first (``light``: no JSON columns)."""
    rows = _read(url, "window_rows", model, version, segment, start, end, light=light)
    columns = (
        LIGHT_WINDOW_COLUMNS
        if light
        else (
            *LIGHT_WINDOW_COLUMNS,
            "performance",
            "baseline_performance",
            "estimated_performance",
            "calibration",
            "baseline_calibration",
            "attribution",
        )
    )
    return _frame(rows, columns)


_FEATURE_COLUMNS = (
    "window_id",
    "window_start",
    "version",
    "segment",
    "feature",
    "kind",
    "method",
    "score",
    "p_value",
    "threshold",
    "drifted",
    "missing_ratio",
    "unseen_ratio",
    "counts",
)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def feature_results(
    url: str,
    model: str,
    version: str | None = None,
    segment: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    with_counts: bool = True,
) -> pd.DataFrame:
    """Feature verdicts of the model's windows in [start, end), oldest first."""
    rows = _read(
        url, "feature_rows", model, start, end, None, version, segment, with_counts=with_counts
    )
    return _frame(rows, _FEATURE_COLUMNS if with_counts else _FEATURE_COLUMNS[:-1])


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def drift_heatmap(
    url: str,
    model: str,
    version: str,
    segment: str,
    start: datetime,
    end: datetime,
    bucket_seconds: int,
) -> pd.DataFrame:
    """Largest drift ratio per feature and time bucket (``Store.drift_heatmap``)."""
    rows = _read(url, "drift_heatmap", model, version, segment, start, end, bucket_seconds)
    frame = pd.DataFrame(rows, columns=["feature", "bucket", "ratio"])
    frame["window_start"] = pd.to_datetime(
        int(start.timestamp()) + frame["bucket"].astype("int64") * bucket_seconds,
        unit="s",
        utc=True,
    )
    return frame[["feature", "window_start", "ratio"]]


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def baseline_profile(url: str, model: str, version: str) -> dict[str, Any] | None:
    """The reference profile of a model version: from the store, else from its file, else None."""
    return _read(url, "load_baseline", model, version) or _baseline_file(model, version)


def _baseline_file(model: str, version: str) -> dict[str, Any] | None:
    """The baseline file driftd.yaml names for the model (or ``baseline_dir/model/version.json``).

    Baselines given as files are not always copied into the store; reading the file
    still lets the app draw window-vs-baseline distributions. Only a file whose
    model and version match is used.
    """
    if not os.environ.get(CONFIG_ENV):
        return None
    configured = settings()
    candidates = [configured.baseline_dir / model / f"{version}.json"]
    entry = configured.model(model)
    if entry is not None and entry.baseline is not None:
        candidates.insert(0, entry.baseline)
    for path in candidates:
        try:
            data = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(data, dict) and (data.get("model"), data.get("version")) == (model, version):
            return data
    return None


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def explanations(
    url: str,
    model: str,
    version: str | None,
    start: datetime,
    end: datetime,
    search: str = "",
    limit: int = MAX_EXPLANATIONS,
) -> pd.DataFrame:
    """Explained predictions of a model in windows starting in [start, end) (or by id prefix)."""
    rows = _read(url, "explanation_rows", model, version, start, end, search, limit)
    return _frame(rows, EXPLANATION_LIST_COLUMNS)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def explanation(url: str, explanation_id: int) -> dict[str, Any] | None:
    """Features and SHAP values of one explained prediction."""
    return _read(url, "explanation_detail", explanation_id)


def add_note(url: str, incident_id: int, author: str, action: str, text: str) -> str:
    """Store a note on an incident (acknowledge, resolve); returns the new status."""
    status = _read(url, "add_note", incident_id, author, action, text)
    clear_cache()
    return status
