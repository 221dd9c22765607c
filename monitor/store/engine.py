"""Engines with the connection settings the store relies on, and error translation.

SQLite: WAL journal (readers never block the writer), a busy timeout (writers
from other processes wait instead of failing), foreign keys on (cascading
deletes), and transactions begun by SQLAlchemy rather than the sqlite3 module.
PostgreSQL: pre-ping on checkout (a restarted server or a dropped connection is
noticed before use) and a connect timeout (an unreachable server is reported as
:class:`StoreUnavailable` instead of hanging).
"""

from __future__ import annotations

import orjson
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from monitor.store.errors import StoreError, StoreUnavailable

__all__ = ["SQLITE_BEGIN_OPTION", "create_store_engine", "translate_error"]

# Execution option naming how SQLite transactions begin ("IMMEDIATE" for writers).
SQLITE_BEGIN_OPTION = "driftd_sqlite_begin"

# How long SQLite waits for another writer's lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a PostgreSQL connection attempt may take before the store is "unavailable".
PG_CONNECT_TIMEOUT_S = 5


def _json_dumps(value: object) -> str:
    # orjson writes NaN/Infinity as null (PostgreSQL's json type rejects them) and
    # understands numpy arrays and scalars, which results are full of.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` configured as described in the module docstring."""
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
            # Writers take the write lock up front (waiting up to busy_timeout): a
            # deferred transaction that reads first fails at once with "database is
            # locked" when another process wrote in between.
            mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

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
