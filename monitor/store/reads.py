"""The store's read layer: every query of results, used by the daemon's callers and the app.

:class:`StoreReads` is mixed into :class:`~monitor.store.Store`. Each query comes in
the shape its readers need and no second copy of the SQL exists anywhere:

* ``*_rows`` methods return plain ``dict`` rows (column name → value, times as
  aware UTC datetimes) that the investigation app turns into frames;
* the record methods (:meth:`windows`, :meth:`feature_results`, :meth:`models`,
  :meth:`window_report`, ...) wrap the same rows into the frozen records of
  :mod:`monitor.store.records`.

Every call is one read transaction; database errors become :class:`StoreError`
(:class:`StoreUnavailable` when the database cannot be reached). Windows are found
through ``ix_window_model_time (model, window_start)`` and feature rows through
``ix_feature_model_time (model, window_start)``, so a page reads rows of its time
range however large the store is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, extract, func, select

from monitor.results import WindowReport
from monitor.store.records import BaselineInfo, FeatureRecord, ModelSummary, WindowRecord
from monitor.store.schema import (
    BaselineRow,
    CheckpointRow,
    FeatureResultRow,
    IncidentRow,
    WindowResultRow,
)
from monitor.store.windows import feature_record, report_from_rows, to_datetime, window_record

__all__ = ["LIGHT_WINDOW_COLUMNS", "StoreReads", "as_datetime"]

_W = WindowResultRow
_F = FeatureResultRow
_KEY = ("model", "version", "segment")
#: Window columns without the JSON maps (what timelines and the heatmap need).
LIGHT_WINDOW_COLUMNS = (
    "id",
    "model",
    "version",
    "segment",
    "window_start",
    "window_end",
    "n_events",
    "n_labels",
    "drift_share",
    "drift_score",
    "model_drifted",
    "n_drifted_features",
    "n_late",
)
_LABELLED_COLUMNS = (
    "window_start",
    "performance",
    "baseline_performance",
    "calibration",
    "baseline_calibration",
    "n_labels",
)


def as_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from what an aggregate returns (text on SQLite), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return to_datetime(value)


def _between(statement, column, start, end):
    if start is not None:
        statement = statement.where(column >= to_datetime(start, "start"))
    if end is not None:
        statement = statement.where(column < to_datetime(end, "end"))
    return statement


def _key_filter(statement, version: str | None, segment: str | None):
    if version is not None:
        statement = statement.where(_W.version == version)
    if segment is not None:
        statement = statement.where(_W.segment == segment)
    return statement


def _join_newest(statement, labelled: bool):
    """``statement`` (over ``window_results``) restricted to each key's newest window."""
    newest = select(_W.model, _W.version, _W.segment, func.max(_W.window_start).label("latest"))
    if labelled:
        newest = newest.where(_W.n_labels > 0)
    newest = newest.group_by(_W.model, _W.version, _W.segment).subquery()
    return statement.join(
        newest,
        (_W.model == newest.c.model)
        & (_W.version == newest.c.version)
        & (_W.segment == newest.c.segment)
        & (_W.window_start == newest.c.latest),
    )


def _window_query(model, version, segment, start, end, light: bool = False):
    columns = [getattr(_W, c) for c in LIGHT_WINDOW_COLUMNS] if light else list(_W.__table__.c)
    statement = select(*columns)
    if model is not None:
        statement = statement.where(_W.model == model)
    statement = _between(_key_filter(statement, version, segment), _W.window_start, start, end)
    return statement.order_by(_W.window_start, _W.model, _W.version, _W.segment)


def _feature_query(
    model, start, end, features, version, segment, with_counts: bool, drifted_only: bool
):
    # Plain columns, not ORM entities: several times faster for thousands of rows.
    columns = [c for c in _F.__table__.c if with_counts or c.name != "counts"]
    statement = select(*columns, _W.version, _W.segment).join(_W, _F.window_id == _W.id)
    if model is not None:
        statement = statement.where(_F.model == model)
    statement = _between(statement, _F.window_start, start, end)
    if features is not None:
        statement = statement.where(_F.feature.in_(list(features)))
    if drifted_only:
        statement = statement.where(_F.drifted.is_(True))
    order = (_F.window_start, _W.version, _W.segment, _F.feature, _F.method)
    return _key_filter(statement, version, segment).order_by(
        *order if model is not None else (_F.model, *order)
    )


class StoreReads:
    """Read queries of the store (a mixin: needs ``self.transaction``, ``self.engine``)."""

    def _rows(self, operation: str, statement) -> list[dict[str, Any]]:
        with self.transaction(operation) as session:  # type: ignore[attr-defined]
            return [dict(row._mapping) for row in session.execute(statement)]

    # -- what the store holds ---------------------------------------------------------

    def store_status(self) -> dict[str, Any]:
        """Window and incident counts and the newest window start (None when empty)."""
        with self.transaction("store_status") as session:  # type: ignore[attr-defined]
            n_windows, latest = session.execute(
                select(func.count(_W.id), func.max(_W.window_start))
            ).one()
            n_incidents = session.scalar(select(func.count(IncidentRow.id)))
        return {
            "windows": int(n_windows),
            "latest": as_datetime(latest),
            "incidents": int(n_incidents or 0),
        }

    def model_names(self) -> list[str]:
        """Model names that have windows or incidents, sorted."""
        with self.transaction("model_names") as session:  # type: ignore[attr-defined]
            names = set(session.scalars(select(_W.model).distinct()))
            names |= {m for m in session.scalars(select(IncidentRow.model).distinct()) if m}
        return sorted(names)

    def model_versions(self, model: str) -> list[str]:
        """Versions of ``model`` with windows, the one with the newest window first."""
        statement = (
            select(_W.version)
            .where(_W.model == model)
            .group_by(_W.version)
            .order_by(func.max(_W.window_start).desc())
        )
        with self.transaction("model_versions") as session:  # type: ignore[attr-defined]
            return list(session.scalars(statement))

    def time_bounds(self, model: str) -> tuple[datetime | None, datetime | None]:
        """First window start and last window end of ``model`` (None, None without windows)."""
        statement = select(func.min(_W.window_start), func.max(_W.window_end)).where(
            _W.model == model
        )
        with self.transaction("time_bounds") as session:  # type: ignore[attr-defined]
            first, last = session.execute(statement).one()
        return as_datetime(first), as_datetime(last)

    def models(self) -> list[ModelSummary]:
        """Each (model, version) with windows: window count and newest window."""
        statement = (
            select(
                _W.model,
                _W.version,
                func.count(_W.id),
                func.max(_W.window_start),
                func.max(_W.window_end),
            )
            .group_by(_W.model, _W.version)
            .order_by(_W.model, _W.version)
        )
        with self.transaction("models") as session:  # type: ignore[attr-defined]
            return [
                ModelSummary(m, v, n, as_datetime(first), as_datetime(last))  # type: ignore[arg-type]
                for m, v, n, first, last in session.execute(statement)
            ]

    # -- baselines and checkpoints ----------------------------------------------------

    def load_baseline(self, model: str, version: str) -> dict[str, Any] | None:
        """The stored profile of ``model`` / ``version``, or None."""
        with self.transaction("load_baseline") as session:  # type: ignore[attr-defined]
            return session.scalar(
                select(BaselineRow.profile).where(
                    BaselineRow.model == model, BaselineRow.version == version
                )
            )

    def list_baselines(self) -> list[BaselineInfo]:
        """Every stored baseline (without profiles), by model and version."""
        statement = select(
            BaselineRow.model, BaselineRow.version, BaselineRow.sha256, BaselineRow.created_at
        )
        with self.transaction("list_baselines") as session:  # type: ignore[attr-defined]
            return [
                BaselineInfo(*row)
                for row in session.execute(
                    statement.order_by(BaselineRow.model, BaselineRow.version)
                )
            ]

    def load_checkpoint(self, name: str) -> tuple[dict[str, int], bytes] | None:
        """``(offsets, state)`` of checkpoint ``name``, or None when there is none."""
        with self.transaction("load_checkpoint") as session:  # type: ignore[attr-defined]
            row = session.execute(
                select(CheckpointRow.offsets, CheckpointRow.state).where(CheckpointRow.name == name)
            ).first()
        if row is None:
            return None
        return {k: int(v) for k, v in row.offsets.items()}, bytes(row.state)

    # -- windows ---------------------------------------------------------------------

    def window_rows(
        self,
        model: str | None,
        version: str | None = None,
        segment: str | None = None,
        start: float | datetime | None = None,
        end: float | datetime | None = None,
        *,
        light: bool = False,
    ) -> list[dict[str, Any]]:
        """Windows with ``start <= window_start < end`` (``model`` None: every model), oldest first.

        ``light`` leaves out the JSON columns (performance, calibration, attribution).
        """
        return self._rows("windows", _window_query(model, version, segment, start, end, light))

    def windows(
        self,
        model: str,
        version: str | None = None,
        segment: str | None = None,
        start: float | datetime | None = None,
        end: float | datetime | None = None,
    ) -> list[WindowRecord]:
        """Windows of ``model`` with ``start <= window_start < end``, oldest first."""
        with self.transaction("windows") as session:  # type: ignore[attr-defined]
            return [
                window_record(row)
                for row in session.execute(_window_query(model, version, segment, start, end))
            ]

    def window_report(
        self, model: str, version: str, segment: str, window_start: float | datetime
    ) -> WindowReport | None:
        """The stored window as a :class:`WindowReport` (feature verdicts included), or None."""
        start = to_datetime(window_start, "window_start")
        with self.transaction("window_report") as session:  # type: ignore[attr-defined]
            window = session.scalar(
                select(_W).where(
                    _W.model == model,
                    _W.version == version,
                    _W.segment == segment,
                    _W.window_start == start,
                )
            )
            if window is None:
                return None
            features = session.scalars(
                select(_F).where(_F.window_id == window.id).order_by(_F.id)
            ).all()
            return report_from_rows(window, features)

    def newest_window_rows(self, *, labelled: bool = False) -> list[dict[str, Any]]:
        """The newest window of every (model, version, segment); ``labelled``: newest with labels."""
        statement = _join_newest(select(*_W.__table__.c), labelled).order_by(
            _W.model, _W.version, _W.segment
        )
        return self._rows("newest_windows", statement)

    def newest_drifted_rows(self) -> list[dict[str, Any]]:
        """Feature verdicts flagged in the newest window of every (model, version, segment)."""
        statement = _join_newest(
            select(
                _F.model,
                _W.version,
                _W.segment,
                _F.window_start,
                _F.feature,
                _F.kind,
                _F.method,
                _F.score,
                _F.p_value,
                _F.threshold,
            )
            .join(_F, _F.window_id == _W.id)
            .where(_F.drifted.is_(True)),
            labelled=False,
        ).order_by(_F.model, _W.version, _W.segment, _F.feature, _F.method)
        return self._rows("newest_drifted", statement)

    def model_health(self, coverage_hours: float = 24.0) -> list[dict[str, Any]]:
        """The newest window of every (model, version, segment), with label coverage.

        Labels arrive late, so the newest window rarely has any: realised performance
        and calibration come from the newest window *with labels* (its columns under
        ``labelled_<column>``), and ``label_coverage`` is labels / events over the
        ``coverage_hours`` before each key's newest window (None without events).
        """
        rows = self.newest_window_rows()
        if not rows:
            return []
        labelled = {tuple(r[k] for k in _KEY): r for r in self.newest_window_rows(labelled=True)}
        since = min(r["window_start"] for r in rows) - timedelta(hours=coverage_hours)
        sums: dict[tuple, list[int]] = {}
        newest = {tuple(r[k] for k in _KEY): r["window_start"] for r in rows}
        statement = select(
            _W.model, _W.version, _W.segment, _W.window_start, _W.n_events, _W.n_labels
        )
        for recent in self._rows("label_coverage", statement.where(_W.window_start >= since)):
            key = tuple(recent[k] for k in _KEY)
            if key in newest and recent["window_start"] > newest[key] - timedelta(
                hours=coverage_hours
            ):
                total = sums.setdefault(key, [0, 0])
                total[0] += recent["n_events"]
                total[1] += recent["n_labels"]
        for row in rows:
            key = tuple(row[k] for k in _KEY)
            found = labelled.get(key, {})
            for column in _LABELLED_COLUMNS:
                row[f"labelled_{column}"] = found.get(column)
            events, labels = sums.get(key, [0, 0])
            row["label_coverage"] = labels / events if events else None
        return rows

    # -- feature verdicts --------------------------------------------------------------

    def feature_rows(
        self,
        model: str | None,
        start: float | datetime | None = None,
        end: float | datetime | None = None,
        features: Iterable[str] | None = None,
        version: str | None = None,
        segment: str | None = None,
        *,
        with_counts: bool = True,
        drifted_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Feature verdicts in windows with ``start <= window_start < end``.

        Rows carry the feature row's columns plus its window's ``version`` and
        ``segment``; ordered by window start, version, segment, feature and method.
        ``features`` restricts to those names; ``drifted_only`` to flagged verdicts;
        ``model`` None reads every model (with ``drifted_only``, for the overview).
        """
        statement = _feature_query(
            model, start, end, features, version, segment, with_counts, drifted_only
        )
        return self._rows("feature_results", statement)

    def feature_results(
        self,
        model: str,
        start: float | datetime,
        end: float | datetime,
        features: Iterable[str] | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> list[FeatureRecord]:
        """Feature verdicts of ``model`` in windows with ``start <= window_start < end``.

        Ordered by window start, version, segment, feature and method. ``features``
        restricts the result to those names (``__prediction__`` and ``__label__``
        included when named).
        """
        statement = _feature_query(model, start, end, features, version, segment, True, False)
        with self.transaction("feature_results") as session:  # type: ignore[attr-defined]
            # Rows straight from the cursor: thousands of them per call.
            return [
                feature_record(row, row.version, row.segment) for row in session.execute(statement)
            ]

    def drift_heatmap(
        self,
        model: str,
        version: str,
        segment: str,
        start: datetime,
        end: datetime,
        bucket_seconds: int,
    ) -> list[dict[str, Any]]:
        """Largest drift ratio per input feature and time bucket, aggregated in the database.

        Rows ``{feature, bucket, ratio}``: ``bucket`` counts ``bucket_seconds`` from
        ``start``; the ratio is ``score / threshold`` (``threshold / score`` for methods
        whose score falls with drift), so >= 1 means the threshold was crossed. Thirty
        days of one model are 430k feature rows; grouping them in SQL returns at most
        features x buckets rows instead.
        """
        from detectors.registry import REGISTRY

        postgres = self.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
        lower = sorted(name for name, spec in REGISTRY.items() if not spec.higher_is_drift)
        ratio = _F.score / func.nullif(_F.threshold, 0)
        if lower:
            ratio = case(
                (_F.method.in_(lower), _F.threshold / func.nullif(_F.score, 0)), else_=ratio
            )
        # SQLite keeps UTC datetimes as text; strftime('%s') reads them as UTC.
        epoch = (
            func.floor(extract("epoch", _W.window_start))
            if postgres
            else cast(func.strftime("%s", _W.window_start), Integer)
        )
        offset = (epoch - int(start.timestamp())) / bucket_seconds
        # Non-negative offsets, so integer division is the floor on both databases.
        bucket = cast(func.floor(offset), Integer) if postgres else cast(offset, Integer)
        statement = (
            select(_F.feature, bucket.label("bucket"), func.max(ratio).label("ratio"))
            .join(_W, _F.window_id == _W.id)
            .where(_W.model == model, ~_F.feature.like("\\_\\_%\\_\\_", escape="\\"))  # inputs only
        )
        statement = _between(_key_filter(statement, version, segment), _W.window_start, start, end)
        return self._rows("drift_heatmap", statement.group_by(_F.feature, bucket))
