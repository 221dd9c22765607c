"""The driftd store: baselines, window results, explanations, incidents, checkpoints.

:func:`open_store` builds a :class:`Store` around one SQLAlchemy engine. SQLite is
the default (WAL journal, a busy timeout and foreign keys switched on for every
connection); PostgreSQL is for production and scale-out (pre-ping on checkout so a
restarted server is survived). Every method runs in one transaction, uses bound
parameters only, and turns database errors into :class:`StoreError` subclasses:
:class:`StoreUnavailable` when the database cannot be reached.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, and_, delete, exc, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from monitor.results import WindowReport
from monitor.store.alarms import AlarmStore, retention_delete
from monitor.store.engine import SQLITE_BEGIN_OPTION, create_store_engine, translate_error
from monitor.store.errors import BaselineExists, StoreError
from monitor.store.explanations import explanation_record, explanation_values
from monitor.store.records import BaselineInfo, ExplanationRecord, FeatureRecord, ModelSummary, WindowRecord
from monitor.store.schema import (
    BaselineRow,
    CheckpointRow,
    ExplanationRow,
    FeatureResultRow,
    IncidentNoteRow,
    IncidentRow,
    WindowResultRow,
)
from monitor.store.windows import (
    feature_record,
    feature_values,
    report_from_rows,
    to_datetime,
    window_record,
    window_values,
)

__all__ = ["Store", "open_store"]

_W = WindowResultRow.__table__
_F = FeatureResultRow.__table__
_E = ExplanationRow.__table__
_WINDOW_KEY = ("model", "version", "segment", "window_start")
# Bound parameters per IN (...) list: far below SQLite's 32766-variable limit.
_IN_CHUNK = 1000
_SUPPORTED = ("sqlite", "postgresql")

_MIGRATIONS = Path(__file__).parent / "migrations"


class Store(AlarmStore):
    """Access to the driftd tables through one engine.

    Parameters
    ----------
    engine
        A SQLAlchemy engine; use :func:`open_store` to build one with the right
        connection settings.

    Attributes
    ----------
    engine
        The engine, for callers that need SQL of their own.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}),
            expire_on_commit=False,
        )

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- sessions and migrations ---------------------------------------------------

    def session(self, *, write: bool = False) -> Session:
        """A new ORM session; use it as a context manager (``with store.session() as s``).

        ``write=True`` makes its transactions take SQLite's write lock when they begin
        (``BEGIN IMMEDIATE``), so that a read followed by a write waits for other
        writers instead of failing with "database is locked". No effect on PostgreSQL.
        """
        return (self._write_sessions if write else self._sessions)()

    @contextlib.contextmanager
    def transaction(
        self, operation: str = "transaction", *, write: bool = False
    ) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Database errors are raised as :class:`StoreError` (``StoreUnavailable`` when
        the database cannot be reached), naming ``operation``. ``write=True`` takes
        SQLite's write lock when the transaction begins (``BEGIN IMMEDIATE``).
        """
        sessions = self._write_sessions if write else self._sessions
        try:
            with sessions() as session, session.begin():
                yield session
        except exc.SQLAlchemyError as error:
            raise translate_error(error, operation) from error

    def alembic_config(self) -> Config:
        """The Alembic configuration of this store (for ``alembic.command`` calls)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option(
            "sqlalchemy.url",
            self.engine.url.render_as_string(hide_password=False).replace("%", "%%"),
        )
        return config

    @contextlib.contextmanager
    def _migration_connection(self, operation: str) -> Iterator[Any]:
        """A connection in one transaction for Alembic, with SQLite foreign keys off.

        On SQLite, batch migrations recreate tables (copy, drop, rename); with
        foreign keys on, dropping a parent table would cascade into its children's
        rows. The pragma only takes effect outside a transaction, hence the DBAPI call.
        """
        try:
            with self.engine.connect() as connection:
                sqlite_db = connection.dialect.name == "sqlite"
                if sqlite_db:
                    connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
                try:
                    with connection.begin():
                        yield connection
                finally:
                    if sqlite_db:
                        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
        except exc.SQLAlchemyError as error:
            raise translate_error(error, operation) from error

    def migrate(self, revision: str = "head") -> str | None:
        """Upgrade the schema to ``revision`` (Alembic); returns the revision now current.

        Safe to call on every start: a database already at head is left alone. On
        PostgreSQL concurrent upgrades are serialised with an advisory lock.
        """
        config = self.alembic_config()
        with self._migration_connection("migrate") as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return self.current_revision()

    def downgrade(self, revision: str) -> str | None:
        """Downgrade the schema to ``revision`` (``"base"`` drops every table).

        For operators rolling back driftd; data in dropped columns and tables is lost.
        """
        config = self.alembic_config()
        with self._migration_connection("downgrade") as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
        return self.current_revision()

    def current_revision(self) -> str | None:
        """The Alembic revision of the database, or None when it was never migrated."""
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except exc.SQLAlchemyError as error:
            raise translate_error(error, "current_revision") from error

    def head_revision(self) -> str:
        """The newest revision shipped with this version of driftd."""
        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
        assert head is not None
        return head

    def _upsert(self, table):
        """The dialect's INSERT that supports ``on_conflict_do_update``."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- baselines -----------------------------------------------------------------

    def save_baseline(self, model: str, version: str, profile: Mapping[str, Any]) -> str:
        """Store the reference profile of a model version; returns its sha256.

        Saving the identical profile again is a no-op. A different profile for a
        stored (model, version) is refused: baselines are never replaced silently.

        Raises
        ------
        BaselineExists
            When a different profile is stored for ``model`` / ``version``.
        """
        _check_name("model", model, 128)
        _check_name("version", version, 64)
        try:
            # The same canonical form as monitor.baseline.Baseline.sha256.
            payload = orjson.dumps(
                profile, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
            )
        except TypeError as error:
            raise StoreError(
                f"baseline {model} {version}: profile is not JSON-serialisable: {error}"
            ) from error
        digest = hashlib.sha256(payload).hexdigest()
        for _attempt in range(2):
            try:
                with self.transaction("save_baseline", write=True) as session:
                    stored = session.scalar(
                        select(BaselineRow.sha256).where(
                            BaselineRow.model == model, BaselineRow.version == version
                        )
                    )
                    if stored is not None:
                        if stored != digest:
                            raise BaselineExists(model, version, stored, digest)
                        return digest
                    session.add(
                        BaselineRow(
                            model=model,
                            version=version,
                            created_at=_now(),
                            sha256=digest,
                            profile=orjson.loads(payload),
                        )
                    )
                return digest
            except StoreError as error:
                # Another process stored the same (model, version) between our read
                # and our insert: look again, the second pass decides.
                if not isinstance(error.__cause__, exc.IntegrityError):
                    raise
        raise StoreError(f"save_baseline {model} {version}: conflicting concurrent writes")

    def load_baseline(self, model: str, version: str) -> dict[str, Any] | None:
        """The stored profile of ``model`` / ``version``, or None."""
        with self.transaction("load_baseline") as session:
            return session.scalar(
                select(BaselineRow.profile).where(
                    BaselineRow.model == model, BaselineRow.version == version
                )
            )

    def list_baselines(self) -> list[BaselineInfo]:
        """Every stored baseline (without profiles), by model and version."""
        with self.transaction("list_baselines") as session:
            rows = session.execute(
                select(
                    BaselineRow.model,
                    BaselineRow.version,
                    BaselineRow.sha256,
                    BaselineRow.created_at,
                ).order_by(BaselineRow.model, BaselineRow.version)
            )
            return [BaselineInfo(*row) for row in rows]

    # -- window results ------------------------------------------------------------

    def write_reports(self, reports: Sequence[WindowReport]) -> int:
        """Insert or replace windows and their feature rows, in one transaction.

        A window is keyed by (model, version, segment, window_start): it is written
        when it closes and rewritten, feature rows included, when labels or
        explanations complete it. Within one call the last report of a key wins.
        Returns the number of windows written.
        """
        if not reports:
            return 0
        now = _now()
        latest: dict[tuple, dict[str, Any]] = {}
        by_key: dict[tuple, WindowReport] = {}
        for report in reports:
            values = window_values(report, now)
            key = tuple(values[c] for c in _WINDOW_KEY)
            latest[key] = values
            by_key[key] = report
        upsert = self._upsert(_W)
        updatable = [c.name for c in _W.columns if c.name not in ("id", *_WINDOW_KEY)]
        statement = upsert.on_conflict_do_update(
            index_elements=list(_WINDOW_KEY),
            set_={name: upsert.excluded[name] for name in updatable},
        ).returning(_W.c.id, *(_W.c[c] for c in _WINDOW_KEY))
        with self.transaction("write_reports", write=True) as session:
            connection = session.connection()
            ids = {
                tuple(row[1:]): row[0]
                for row in connection.execute(statement, list(latest.values()))
            }
            window_ids = list(ids.values())
            for chunk in _chunks(window_ids, _IN_CHUNK):
                connection.execute(delete(_F).where(_F.c.window_id.in_(chunk)))
            features = [
                row
                for key, report in by_key.items()
                for row in feature_values(report, ids[key], key[3])
            ]
            if features:
                connection.execute(insert(_F), features)
        return len(latest)

    def window_report(
        self, model: str, version: str, segment: str, window_start: float | datetime
    ) -> WindowReport | None:
        """The stored window as a :class:`WindowReport` (feature verdicts included), or None."""
        start = to_datetime(window_start, "window_start")
        with self.transaction("window_report") as session:
            window = session.scalar(
                select(WindowResultRow).where(
                    WindowResultRow.model == model,
                    WindowResultRow.version == version,
                    WindowResultRow.segment == segment,
                    WindowResultRow.window_start == start,
                )
            )
            if window is None:
                return None
            features = session.scalars(
                select(FeatureResultRow)
                .where(FeatureResultRow.window_id == window.id)
                .order_by(FeatureResultRow.id)
            ).all()
            return report_from_rows(window, features)

    def windows(
        self,
        model: str,
        version: str | None = None,
        segment: str | None = None,
        start: float | datetime | None = None,
        end: float | datetime | None = None,
    ) -> list[WindowRecord]:
        """Windows of ``model`` with ``start <= window_start < end``, oldest first."""
        query = select(*_W.c).where(WindowResultRow.model == model)
        if version is not None:
            query = query.where(WindowResultRow.version == version)
        if segment is not None:
            query = query.where(WindowResultRow.segment == segment)
        if start is not None:
            query = query.where(WindowResultRow.window_start >= to_datetime(start, "start"))
        if end is not None:
            query = query.where(WindowResultRow.window_start < to_datetime(end, "end"))
        query = query.order_by(
            WindowResultRow.window_start, WindowResultRow.version, WindowResultRow.segment
        )
        with self.transaction("windows") as session:
            return [window_record(row) for row in session.execute(query)]

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
        query = (
            # Plain columns, not ORM entities: several times faster for thousands of rows.
            select(
                *_F.c,
                WindowResultRow.version.label("window_version"),
                WindowResultRow.segment.label("window_segment"),
            )
            .join(WindowResultRow, FeatureResultRow.window_id == WindowResultRow.id)
            .where(
                FeatureResultRow.model == model,
                FeatureResultRow.window_start >= to_datetime(start, "start"),
                FeatureResultRow.window_start < to_datetime(end, "end"),
            )
        )
        if features is not None:
            query = query.where(FeatureResultRow.feature.in_(list(features)))
        if version is not None:
            query = query.where(WindowResultRow.version == version)
        if segment is not None:
            query = query.where(WindowResultRow.segment == segment)
        query = query.order_by(
            FeatureResultRow.window_start,
            WindowResultRow.version,
            WindowResultRow.segment,
            FeatureResultRow.feature,
            FeatureResultRow.method,
        )
        with self.transaction("feature_results") as session:
            return [
                feature_record(row, row.window_version, row.window_segment)
                for row in session.execute(query)
            ]

    def models(self) -> list[ModelSummary]:
        """Each (model, version) with windows: window count and newest window."""
        query = (
            select(
                WindowResultRow.model,
                WindowResultRow.version,
                func.count(WindowResultRow.id),
                func.max(WindowResultRow.window_start),
                func.max(WindowResultRow.window_end),
            )
            .group_by(WindowResultRow.model, WindowResultRow.version)
            .order_by(WindowResultRow.model, WindowResultRow.version)
        )
        with self.transaction("models") as session:
            return [
                # max() loses the column type on SQLite, so times come back as text there.
                ModelSummary(m, v, n, _as_datetime(first), _as_datetime(last))
                for m, v, n, first, last in session.execute(query)
            ]

    # -- explanations --------------------------------------------------------------

    def add_explanations(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert explanations in one transaction; returns how many were new.

        Each row maps :class:`~monitor.store.schema.ExplanationRow` column names to
        values; ``event_time`` and ``window_start`` may be epoch seconds or
        datetimes; ``segment``, ``background_hash``, ``reason`` and ``created_at``
        may be left out. A row whose (prediction_id, created_at) is already stored
        is skipped, so retrying a batch never stores an explanation twice.

        Raises
        ------
        StoreError
            When a row has an unknown column or lacks a required one (nothing is
            written then).
        """
        if not rows:
            return 0
        now = _now()
        values = [explanation_values(row, index, now) for index, row in enumerate(rows)]
        upsert = self._upsert(_E)
        statement = upsert.on_conflict_do_nothing(
            index_elements=["prediction_id", "created_at"]
        ).returning(_E.c.id)
        with self.transaction("add_explanations", write=True) as session:
            return len(session.connection().execute(statement, values).all())

    def explanation(self, prediction_id: str) -> ExplanationRecord | None:
        """The newest explanation of ``prediction_id``, or None."""
        query = (
            select(ExplanationRow)
            .where(ExplanationRow.prediction_id == prediction_id)
            .order_by(ExplanationRow.created_at.desc(), ExplanationRow.id.desc())
            .limit(1)
        )
        with self.transaction("explanation") as session:
            row = session.scalar(query)
            return None if row is None else explanation_record(row)

    def explanations_for_window(
        self,
        model: str,
        version: str,
        window_start: float | datetime,
        limit: int = 100,
        segment: str | None = None,
    ) -> list[ExplanationRecord]:
        """Up to ``limit`` explanations of one window, by event time."""
        query = (
            select(ExplanationRow)
            .where(
                ExplanationRow.model == model,
                ExplanationRow.version == version,
                ExplanationRow.window_start == to_datetime(window_start, "window_start"),
            )
            .order_by(ExplanationRow.event_time, ExplanationRow.id)
            .limit(max(0, int(limit)))
        )
        if segment is not None:
            query = query.where(ExplanationRow.segment == segment)
        with self.transaction("explanations_for_window") as session:
            return [explanation_record(row) for row in session.scalars(query)]

    def top_attributions(
        self,
        model: str,
        version: str,
        window_start: float | datetime,
        k: int = 10,
        segment: str | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` features with the largest mean |SHAP| over a window's explanations.

        The mean is over all of the window's explanations (a feature missing from
        one counts as 0 there); ties are broken by feature name.
        """
        query = select(ExplanationRow.shap_values).where(
            ExplanationRow.model == model,
            ExplanationRow.version == version,
            ExplanationRow.window_start == to_datetime(window_start, "window_start"),
        )
        if segment is not None:
            query = query.where(ExplanationRow.segment == segment)
        totals: dict[str, float] = defaultdict(float)
        n_rows = 0
        with self.transaction("top_attributions") as session:
            for shap_values in session.scalars(query):
                n_rows += 1
                for feature, value in shap_values.items():
                    if value is not None:
                        totals[feature] += abs(value)
        if not n_rows:
            return []
        ranked = sorted(((f, t / n_rows) for f, t in totals.items()), key=lambda x: (-x[1], x[0]))
        return ranked[: max(0, int(k))]

    # -- checkpoints ---------------------------------------------------------------

    def save_checkpoint(self, name: str, offsets: Mapping[str, int], state: bytes) -> None:
        """Replace checkpoint ``name``: consumer offsets and state, in one transaction.

        Either both the offsets and the state of this call are stored or, on any
        error, the previous checkpoint stays as it was.
        """
        _check_name("checkpoint name", name, 256)
        try:
            values = {
                "name": name,
                "offsets": {str(k): int(v) for k, v in offsets.items()},
                "state": bytes(state),
                "updated_at": _now(),
            }
        except (TypeError, ValueError) as error:
            raise StoreError(
                f"checkpoint {name}: offsets must map str to int and state be bytes: {error}"
            ) from error
        table = CheckpointRow.__table__
        upsert = self._upsert(table)
        statement = upsert.values(values).on_conflict_do_update(
            index_elements=["name"],
            set_={c: upsert.excluded[c] for c in ("offsets", "state", "updated_at")},
        )
        with self.transaction("save_checkpoint", write=True) as session:
            session.execute(statement)

    def load_checkpoint(self, name: str) -> tuple[dict[str, int], bytes] | None:
        """``(offsets, state)`` of checkpoint ``name``, or None when there is none."""
        with self.transaction("load_checkpoint") as session:
            row = session.execute(
                select(CheckpointRow.offsets, CheckpointRow.state).where(CheckpointRow.name == name)
            ).first()
        if row is None:
            return None
        return {k: int(v) for k, v in row.offsets.items()}, bytes(row.state)

    # -- retention -----------------------------------------------------------------

    def apply_retention(self, now: datetime, days: int) -> dict[str, int]:
        """Delete results older than ``days`` before ``now``; returns rows deleted per table.

        Removed: windows that started before the cut-off with their feature rows,
        explanations of such windows, sequential alarms raised before it, and
        resolved incidents (with their notes) that ended before it. Baselines and checkpoints are never removed; firing
        or acknowledged incidents are kept however old.
        """
        if int(days) < 1:
            raise StoreError(f"retention days must be >= 1, got {days!r}")
        cutoff = to_datetime(now, "now") - timedelta(days=int(days))
        windows = select(WindowResultRow.id).where(WindowResultRow.window_start < cutoff)
        resolved = select(IncidentRow.id).where(
            IncidentRow.status == "resolved",
            or_(
                IncidentRow.ends_at < cutoff,
                and_(IncidentRow.ends_at.is_(None), IncidentRow.updated_at < cutoff),
            ),
        )
        deleted: dict[str, int] = {}
        with self.transaction("apply_retention", write=True) as session:
            connection = session.connection()
            # Children first, explicitly, so that the counts are exact (the foreign
            # keys cascade too).
            for table, statement in (
                (
                    "feature_results",
                    delete(_F).where(_F.c.window_id.in_(windows.scalar_subquery())),
                ),
                ("window_results", delete(_W).where(_W.c.window_start < cutoff)),
                ("explanations", delete(_E).where(_E.c.window_start < cutoff)),
                ("concept_alarms", retention_delete(cutoff)),
                (
                    "incident_notes",
                    delete(IncidentNoteRow.__table__).where(
                        IncidentNoteRow.__table__.c.incident_id.in_(resolved.scalar_subquery())
                    ),
                ),
                (
                    "incidents",
                    delete(IncidentRow.__table__).where(
                        IncidentRow.__table__.c.id.in_(resolved.scalar_subquery())
                    ),
                ),
            ):
                deleted[table] = connection.execute(statement).rowcount
        return deleted

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return to_datetime(value)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_name(what: str, value: Any, max_length: int) -> None:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise StoreError(
            f"{what} must be a non-empty string of at most {max_length} characters, got {value!r}"
        )


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store at ``url`` (``sqlite:///path.db``, ``postgresql+psycopg://...``).

    Parameters
    ----------
    url
        A SQLAlchemy database URL.
    create
        Upgrade the schema to the newest revision now (creating the tables in an
        empty database). With False nothing touches the database until first use,
        so a store that is down at start does not stop the caller.

    Raises
    ------
    StoreError
        When the URL is malformed or names an unsupported driver.
    StoreUnavailable
        When ``create`` is true and the database cannot be reached.
    """
    try:
        engine = create_store_engine(url)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise StoreError(
            f"store.url {url!r} is not usable: {error}; expected e.g. sqlite:///driftd.db or "
            "postgresql+psycopg://user@host/db"
        ) from error
    parsed = engine.url
    if parsed.get_backend_name() not in _SUPPORTED:
        engine.dispose()
        raise StoreError(
            f"store.url {url!r}: unsupported database {parsed.get_backend_name()!r}; "
            f"allowed: {', '.join(_SUPPORTED)}"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    store = Store(engine)
    if create:
        store.migrate()
    return store
