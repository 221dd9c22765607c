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

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from monitor.store.errors import StoreError, StoreUnavailable

__all__ = ["Store", "open_store"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# How long SQLite waits for another writer's lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a PostgreSQL connection attempt may take before the store is "unavailable".
PG_CONNECT_TIMEOUT_S = 5


def _json_dumps(value: object) -> str:
    # orjson writes NaN/Infinity as null (PostgreSQL's json type rejects them) and
    # understands numpy arrays and scalars, which results are full of.
    return orjson.dumps(
        value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    ).decode()


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    options: dict = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if backend == "sqlite":
        connect_args: dict = {"check_same_thread": False}
        if parsed.database in (None, "", ":memory:"):
            # One shared connection, or every session would see its own empty database.
            options["poolclass"] = StaticPool
        engine = create_engine(url, connect_args=connect_args, **options)
        memory = parsed.database in (None, "", ":memory:")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin,
            # so that reads and writes of one call share one transaction.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # pragma: no cover - trivial
            conn.exec_driver_sql("BEGIN")

        return engine
    if backend == "postgresql":
        connect_args = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **options)
    return create_engine(url, pool_pre_ping=True, **options)


def translate_error(error: exc.SQLAlchemyError, operation: str) -> StoreError:
    """A :class:`StoreError` for a SQLAlchemy error, naming the operation."""
    if isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)):
        return StoreUnavailable(f"store unavailable during {operation}: {_first_line(error)}")
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return StoreUnavailable(f"store connection lost during {operation}: {_first_line(error)}")
    return StoreError(f"{operation} failed: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Store:
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

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- sessions and migrations ---------------------------------------------------

    def session(self) -> Session:
        """A new ORM session; use it as a context manager (``with store.session() as s``)."""
        return self._sessions()

    @contextlib.contextmanager
    def transaction(self, operation: str = "transaction") -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Database errors are raised as :class:`StoreError` (``StoreUnavailable`` when
        the database cannot be reached), naming ``operation``.
        """
        try:
            with self._sessions() as session, session.begin():
                yield session
        except exc.SQLAlchemyError as error:
            raise translate_error(error, operation) from error

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option(
            "sqlalchemy.url", self.engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
        return config

    def migrate(self, revision: str = "head") -> str | None:
        """Upgrade the schema to ``revision`` (Alembic); returns the revision now current.

        Safe to call on every start: a database already at head is left alone. On
        PostgreSQL concurrent upgrades are serialised with an advisory lock.
        """
        config = self._alembic_config()
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except exc.SQLAlchemyError as error:
            raise translate_error(error, "migrate") from error
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
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


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
        engine = _create_engine(url)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise StoreError(
            f"store.url {url!r} is not usable: {error}; expected e.g. sqlite:///driftd.db or "
            "postgresql+psycopg://user@host/db"
        ) from error
    if make_url(url).get_backend_name() == "sqlite" and make_url(url).database not in (None, "", ":memory:"):
        Path(make_url(url).database).parent.mkdir(parents=True, exist_ok=True)
    store = Store(engine)
    if create:
        store.migrate()
    return store
