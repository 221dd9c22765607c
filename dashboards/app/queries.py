"""The app's read queries (and its one write: incident notes).

Every query is parameterised SQLAlchemy Core over the store's tables and cached
with a short TTL, so that a page re-run by a widget does not hit the database
again while an incident that is still developing shows up within
:data:`TTL_SECONDS`. Results are plain pandas frames and dicts (what
``st.cache_data`` can copy).

Sizing (``bench/app.py``: 30 days of 5-minute windows, 10 models, 50 features):
windows are found through ``ix_window_model_time (model, window_start)`` and
their feature rows through ``ix_feature_window (window_id)``, so the incident
page reads a few thousand rows however large the store is. Datetimes come back
from SQLite without a zone; they are UTC and are made aware here.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import streamlit as st
from sqlalchemy import Engine, Integer, case, cast, extract, func, select
from sqlalchemy.exc import SQLAlchemyError

from dashboards.app import CONFIG_ENV
from dashboards.app.params import AppError
from monitor.store import StoreError, open_store
from monitor.store.schema import (
    BaselineRow,
    ExplanationRow,
    FeatureResultRow,
    IncidentNoteRow,
    IncidentRow,
    WindowResultRow,
)

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
    "get_engine",
    "incident",
    "incidents",
    "model_health",
    "model_versions",
    "models",
    "store_status",
    "time_bounds",
    "windows",
]

TTL_SECONDS = 30
NOTE_ACTIONS = ("note", "acknowledge", "resolve")
# Explanations listed per page; the search box narrows by prediction id.
MAX_EXPLANATIONS = 200

_W = WindowResultRow
_F = FeatureResultRow


class StoreUnavailable(AppError):
    """The store cannot be reached or holds no driftd tables."""


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    """One engine (connection pool) per store URL for the app's lifetime.

    Built by the store itself (same JSON codec, SQLite WAL and busy timeout), but
    without migrating: the app never changes the schema.
    """
    try:
        return open_store(url, create=False).engine
    except StoreError as exc:
        raise StoreUnavailable(str(exc)) from None


def _rows(url: str, statement) -> list[dict[str, Any]]:
    try:
        with get_engine(url).connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]
    except SQLAlchemyError as exc:
        raise StoreUnavailable(_describe(exc)) from None


def _describe(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "no such table" in text or "does not exist" in text:
        return f"the store has no driftd tables ({text}); create them with `driftd store migrate`"
    return f"cannot read the store: {text}"


def _frame(rows: list[dict[str, Any]], columns: list[str], times: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def clear_cache() -> None:
    """Forget cached results (after a write, or from the refresh button)."""
    st.cache_data.clear()


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def store_status(url: str) -> dict[str, Any]:
    """Whether the store has anything to show: window and incident counts, newest window."""
    rows = _rows(
        url,
        select(func.count(_W.id).label("windows"), func.max(_W.window_start).label("latest")),
    )
    incidents_n = _rows(url, select(func.count(IncidentRow.id).label("n")))[0]["n"]
    return {
        "windows": rows[0]["windows"],
        "latest": _utc(rows[0]["latest"]),
        "incidents": incidents_n,
    }


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def models(url: str) -> list[str]:
    """Model names that have windows or incidents."""
    names = {r["model"] for r in _rows(url, select(_W.model).distinct())}
    names |= {r["model"] for r in _rows(url, select(IncidentRow.model).distinct()) if r["model"]}
    return sorted(names)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def model_versions(url: str, model: str) -> list[str]:
    """Versions of ``model`` with windows, newest window first."""
    statement = (
        select(_W.version, func.max(_W.window_start).label("latest"))
        .where(_W.model == model)
        .group_by(_W.version)
        .order_by(func.max(_W.window_start).desc())
    )
    return [r["version"] for r in _rows(url, statement)]


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def time_bounds(url: str, model: str) -> tuple[datetime | None, datetime | None]:
    """First window start and last window end of ``model``."""
    statement = select(func.min(_W.window_start).label("first"), func.max(_W.window_end).label("last"))
    row = _rows(url, statement.where(_W.model == model))[0]
    return _utc(row["first"]), _utc(row["last"])


_HEALTH_COLUMNS = [
    "model", "version", "segment", "window_start", "window_end", "n_events", "n_labels",
    "drift_share", "drift_score", "model_drifted", "performance", "baseline_performance",
    "estimated_performance", "calibration", "baseline_calibration",
]


def _newest(where=None):
    """Subquery: the newest window start per (model, version, segment), optionally filtered."""
    statement = select(_W.model, _W.version, _W.segment, func.max(_W.window_start).label("latest"))
    if where is not None:
        statement = statement.where(where)
    return statement.group_by(_W.model, _W.version, _W.segment).subquery()


def _join_newest(columns: list[str], newest):
    return select(*[getattr(_W, c) for c in columns]).join(
        newest,
        (_W.model == newest.c.model)
        & (_W.version == newest.c.version)
        & (_W.segment == newest.c.segment)
        & (_W.window_start == newest.c.latest),
    )


_LABELLED_COLUMNS = ["model", "version", "segment", "window_start", "performance",
                     "baseline_performance", "calibration"]


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def model_health(url: str, coverage_hours: float = 24.0) -> pd.DataFrame:
    """The newest window of every (model, version, segment), plus label coverage.

    Labels arrive late, so the newest window rarely has any: realised performance
    and calibration come from the newest window *with labels*
    (``labelled_window_start``, ``labelled_performance``, ...), and
    ``label_coverage`` is labels / events over the ``coverage_hours`` before each
    key's newest window.
    """
    frame = _frame(_rows(url, _join_newest(_HEALTH_COLUMNS, _newest())), _HEALTH_COLUMNS,
                   ("window_start", "window_end"))
    if frame.empty:
        frame["label_coverage"] = []
        return frame
    labelled = _frame(
        _rows(url, _join_newest(_LABELLED_COLUMNS, _newest(_W.n_labels > 0))),
        _LABELLED_COLUMNS, ("window_start",),
    ).rename(columns={c: f"labelled_{c}" for c in _LABELLED_COLUMNS[3:]})
    frame = frame.merge(labelled, on=["model", "version", "segment"], how="left")
    since = frame["window_start"].min().to_pydatetime() - timedelta(hours=coverage_hours)
    coverage = (
        select(
            _W.model, _W.version, _W.segment, _W.window_start,
            _W.n_events, _W.n_labels,
        ).where(_W.window_start >= since)
    )
    recent = _frame(
        _rows(url, coverage),
        ["model", "version", "segment", "window_start", "n_events", "n_labels"],
        ("window_start",),
    )
    merged = recent.merge(
        frame[["model", "version", "segment", "window_start"]].rename(
            columns={"window_start": "latest"}
        ),
        on=["model", "version", "segment"],
    )
    merged = merged[merged["window_start"] > merged["latest"] - pd.Timedelta(hours=coverage_hours)]
    sums = merged.groupby(["model", "version", "segment"])[["n_events", "n_labels"]].sum()
    sums["label_coverage"] = sums["n_labels"] / sums["n_events"].where(sums["n_events"] > 0)
    frame = frame.merge(
        sums[["label_coverage"]].reset_index(), on=["model", "version", "segment"], how="left"
    )
    return frame.sort_values(["model", "version", "segment"]).reset_index(drop=True)


_INCIDENT_COLUMNS = [
    "id", "fingerprint", "alertname", "status", "severity", "model", "version", "segment",
    "feature", "labels", "annotations", "starts_at", "ends_at", "updated_at",
]


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
    statement = select(*[getattr(IncidentRow, c) for c in _INCIDENT_COLUMNS])
    if status:
        statement = statement.where(IncidentRow.status.in_(status))
    if model:
        statement = statement.where(IncidentRow.model == model)
    if end is not None:
        statement = statement.where(IncidentRow.starts_at < end)
    if start is not None:
        statement = statement.where((IncidentRow.ends_at.is_(None)) | (IncidentRow.ends_at >= start))
    statement = statement.order_by(IncidentRow.starts_at.desc(), IncidentRow.id.desc()).limit(limit)
    return _frame(
        _rows(url, statement), _INCIDENT_COLUMNS, ("starts_at", "ends_at", "updated_at")
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def incident(url: str, incident_id: int) -> dict[str, Any] | None:
    """One incident with its notes (oldest first), or None."""
    rows = _rows(
        url,
        select(*[getattr(IncidentRow, c) for c in _INCIDENT_COLUMNS]).where(
            IncidentRow.id == incident_id
        ),
    )
    if not rows:
        return None
    found = rows[0]
    for key in ("starts_at", "ends_at", "updated_at"):
        found[key] = _utc(found[key])
    notes = _rows(
        url,
        select(
            IncidentNoteRow.author, IncidentNoteRow.action, IncidentNoteRow.text,
            IncidentNoteRow.created_at,
        )
        .where(IncidentNoteRow.incident_id == incident_id)
        .order_by(IncidentNoteRow.created_at, IncidentNoteRow.id),
    )
    for note in notes:
        note["created_at"] = _utc(note["created_at"])
    found["notes"] = notes
    return found


_WINDOW_COLUMNS = [
    "id", "model", "version", "segment", "window_start", "window_end", "n_events", "n_labels",
    "drift_share", "drift_score", "model_drifted", "performance", "baseline_performance",
    "estimated_performance", "calibration", "baseline_calibration", "attribution",
]


def _window_filter(statement, model: str, version: str | None, segment: str | None,
                   start: datetime | None, end: datetime | None):
    statement = statement.where(_W.model == model)
    if version is not None:
        statement = statement.where(_W.version == version)
    if segment is not None:
        statement = statement.where(_W.segment == segment)
    if start is not None:
        statement = statement.where(_W.window_start >= start)
    if end is not None:
        statement = statement.where(_W.window_start < end)
    return statement


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
    """Windows of a model starting in [start, end), oldest first.

    ``light`` leaves out the JSON columns the heatmap does not need.
    """
    columns = _WINDOW_COLUMNS[:11] if light else _WINDOW_COLUMNS
    statement = _window_filter(
        select(*[getattr(_W, c) for c in columns]), model, version, segment, start, end
    ).order_by(_W.window_start)
    return _frame(_rows(url, statement), columns, ("window_start", "window_end"))


_FEATURE_COLUMNS = [
    "window_id", "window_start", "version", "segment", "feature", "kind", "method", "score",
    "p_value", "threshold", "drifted", "missing_ratio", "unseen_ratio", "counts",
]


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
    """Feature verdicts of the model's windows in [start, end), oldest first.

    Joined through the window so that the window index bounds the scan and only
    the matching windows' feature rows are read (``ix_feature_window``).
    """
    columns = _FEATURE_COLUMNS if with_counts else _FEATURE_COLUMNS[:-1]
    selected = [
        _F.window_id, _W.window_start, _W.version, _W.segment, _F.feature, _F.kind, _F.method,
        _F.score, _F.p_value, _F.threshold, _F.drifted, _F.missing_ratio, _F.unseen_ratio,
    ]
    if with_counts:
        selected.append(_F.counts)
    statement = _window_filter(
        select(*selected).join(_W, _F.window_id == _W.id), model, version, segment, start, end
    ).order_by(_W.window_start, _F.feature)
    return _frame(_rows(url, statement), columns, ("window_start",))


def _epoch_seconds(column, dialect: str):
    if dialect == "postgresql":
        return func.floor(extract("epoch", column))
    # SQLite keeps UTC datetimes as text; strftime('%s') reads them as UTC.
    return cast(func.strftime("%s", column), Integer)


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
    """Largest drift ratio per feature and time bucket, aggregated in the database.

    The ratio is ``score / threshold`` (``threshold / score`` for methods whose score
    falls with drift), so ≥ 1 means the threshold was crossed. Thirty days of one
    model are 430k feature rows; grouping them in SQL returns at most
    features × buckets rows instead.
    """
    from detectors.registry import REGISTRY

    dialect = get_engine(url).dialect.name
    lower = sorted(name for name, spec in REGISTRY.items() if not spec.higher_is_drift)
    forward = _F.score / func.nullif(_F.threshold, 0)
    ratio = forward
    if lower:
        ratio = case((_F.method.in_(lower), _F.threshold / func.nullif(_F.score, 0)),
                     else_=forward)
    origin = int(start.timestamp())
    # Non-negative offsets, so integer division is the floor on both databases.
    bucket = cast((_epoch_seconds(_W.window_start, dialect) - origin) / bucket_seconds, Integer)
    if dialect == "postgresql":
        bucket = cast(
            func.floor((_epoch_seconds(_W.window_start, dialect) - origin) / bucket_seconds),
            Integer,
        )
    statement = _window_filter(
        select(_F.feature, bucket.label("bucket"), func.max(ratio).label("ratio"))
        .join(_W, _F.window_id == _W.id)
        # Inputs only: pseudo-features are named __like_this__.
        .where(~_F.feature.like("\\_\\_%\\_\\_", escape="\\")),
        model, version, segment, start, end,
    ).group_by(_F.feature, bucket)
    frame = pd.DataFrame(_rows(url, statement), columns=["feature", "bucket", "ratio"])
    frame["window_start"] = pd.to_datetime(
        origin + frame["bucket"].astype("int64") * bucket_seconds, unit="s", utc=True
    )
    return frame[["feature", "window_start", "ratio"]]


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def baseline_profile(url: str, model: str, version: str) -> dict[str, Any] | None:
    """The reference profile of a model version: from the store, else from its file, else None."""
    rows = _rows(
        url,
        select(BaselineRow.profile).where(BaselineRow.model == model, BaselineRow.version == version),
    )
    if rows:
        return rows[0]["profile"]
    return _baseline_file(model, version)


def _baseline_file(model: str, version: str) -> dict[str, Any] | None:
    """The baseline file driftd.yaml names for the model (or ``baseline_dir/model/version.json``).

    Baselines given as files are not always copied into the store; reading the file
    still lets the app draw window-vs-baseline distributions. Only a file whose
    model and version match is used.
    """
    config = os.environ.get(CONFIG_ENV)
    if not config:
        return None
    from monitor.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError:
        return None
    candidates = [settings.baseline_dir / model / f"{version}.json"]
    configured = settings.model(model)
    if configured is not None and configured.baseline is not None:
        candidates.insert(0, configured.baseline)
    for path in candidates:
        try:
            data = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(data, dict) and (data.get("model"), data.get("version")) == (model, version):
            return data
    return None


_EXPLANATION_COLUMNS = [
    "id", "prediction_id", "version", "segment", "event_time", "window_start", "prediction",
    "base_value", "reason", "explainer",
]


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
    """Explained predictions of a model in windows starting in [start, end).

    ``search`` matches prediction ids by prefix, across the whole store when set
    (the id is what a user copies from a log line).
    """
    statement = select(*[getattr(ExplanationRow, c) for c in _EXPLANATION_COLUMNS]).where(
        ExplanationRow.model == model
    )
    if search:
        statement = statement.where(ExplanationRow.prediction_id.startswith(search, autoescape=True))
    else:
        statement = statement.where(
            ExplanationRow.window_start >= start, ExplanationRow.window_start < end
        )
        if version is not None:
            statement = statement.where(ExplanationRow.version == version)
    statement = statement.order_by(ExplanationRow.event_time.desc()).limit(limit)
    return _frame(_rows(url, statement), _EXPLANATION_COLUMNS, ("event_time", "window_start"))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def explanation(url: str, explanation_id: int) -> dict[str, Any] | None:
    """Features and SHAP values of one explained prediction."""
    rows = _rows(
        url,
        select(
            ExplanationRow.prediction_id, ExplanationRow.features, ExplanationRow.prediction,
            ExplanationRow.base_value, ExplanationRow.shap_values, ExplanationRow.explainer,
            ExplanationRow.event_time,
        ).where(ExplanationRow.id == explanation_id),
    )
    return rows[0] if rows else None


def add_note(url: str, incident_id: int, author: str, action: str, text: str) -> str:
    """Store a note on an incident; acknowledge or resolve it. Returns the new status.

    The note and the status change are one transaction, so the incident never
    shows a status without the note that explains it.
    """
    author = author.strip()
    if not author:
        raise AppError("author: enter your name so that others know who did this")
    if len(author) > 128:
        raise AppError("author: at most 128 characters")
    if action not in NOTE_ACTIONS:
        raise AppError(f"action: {action!r} is not allowed; allowed: {', '.join(NOTE_ACTIONS)}")
    now = datetime.now(UTC)
    try:
        with get_engine(url).begin() as conn:
            row = conn.execute(
                select(IncidentRow.status, IncidentRow.ends_at).where(IncidentRow.id == incident_id)
            ).first()
            if row is None:
                raise AppError(f"incident {incident_id} no longer exists")
            status = row.status
            values: dict[str, Any] = {"updated_at": now}
            if action == "acknowledge" and status == "firing":
                status = "acknowledged"
            elif action == "resolve":
                status = "resolved"
                if row.ends_at is None:
                    values["ends_at"] = now
            values["status"] = status
            conn.execute(
                IncidentNoteRow.__table__.insert().values(
                    incident_id=incident_id, author=author, action=action, text=text.strip(),
                    created_at=now,
                )
            )
            conn.execute(
                IncidentRow.__table__.update().where(IncidentRow.id == incident_id).values(**values)
            )
    except SQLAlchemyError as exc:
        raise StoreUnavailable(_describe(exc)) from None
    clear_cache()
    return status
