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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import Engine, exc
from sqlalchemy.orm import Session, sessionmaker

from monitor.store.alarms import AlarmStore
from monitor.store.engine import (
    SQLITE_BEGIN_OPTION,
    create_store_engine,
    masked_url,
    redact,
    translate_error,
)
from monitor.store.errors import StoreError
from monitor.store.explanations import ExplanationReads
from monitor.store.incidents import IncidentStore
from monitor.store.reads import StoreReads
from monitor.store.retrain import RetrainStore
from monitor.store.writes import StoreWrites

__all__ = ["Store", "open_store"]

_SUPPORTED = ("sqlite", "postgresql")

_MIGRATIONS = Path(__file__).parent / "migrations"


class Store(StoreReads, ExplanationReads, IncidentStore, StoreWrites, AlarmStore, RetrainStore):
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

    Notes
    -----
    The operations live in mixins, one module per concern: reads of results
    (:mod:`monitor.store.reads`), explanations (:mod:`monitor.store.explanations`),
    incidents and notes (:mod:`monitor.store.incidents`), retrain requests
    (:mod:`monitor.store.retrain`) and writes (:mod:`monitor.store.writes`).
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

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_store(url: str | SecretStr, *, create: bool = True) -> Store:
    """Open the store at ``url`` (``sqlite:///path.db``, ``postgresql+psycopg://...``).

    Parameters
    ----------
    url
        A SQLAlchemy database URL (``store.url`` of the settings is a ``SecretStr``).
    create
        Upgrade the schema to the newest revision now (creating the tables in an
        empty database). With False nothing touches the database until first use,
        so a store that is down at start does not stop the caller.

    Raises
    ------
    StoreError
        When the URL is malformed or names an unsupported driver; the message shows
        the URL with its password masked.
    StoreUnavailable
        When ``create`` is true and the database cannot be reached.
    """
    if isinstance(url, SecretStr):
        url = url.get_secret_value()
    try:
        engine = create_store_engine(url)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError, ValueError, TypeError) as error:
        # `from None`: the chained exception's text and traceback would show the password.
        raise StoreError(
            f"store.url {masked_url(url)!r} is not usable: {redact(str(error), url)}; expected e.g. "
            "sqlite:///driftd.db or postgresql+psycopg://user@host/db"
        ) from None
    parsed = engine.url
    if parsed.get_backend_name() not in _SUPPORTED:
        engine.dispose()
        raise StoreError(
            f"store.url {masked_url(url)!r}: unsupported database {parsed.get_backend_name()!r}; "
            f"allowed: {', '.join(_SUPPORTED)}"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    store = Store(engine)
    if create:
        store.migrate()
    return store
