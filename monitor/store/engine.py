"""Engines with the connection settings the store relies on, and error translation.

SQLite: WAL journal (readers never block the writer), a busy timeout (writers
from other processes wait instead of failing), foreign keys on (cascading
deletes), and transactions begun by SQLAlchemy rather than the sqlite3 module.
PostgreSQL: pre-ping on checkout (a restarted server or a dropped connection is
noticed before use) and a connect timeout (an unreachable server is reported as
:class:`StoreUnavailable` instead of hanging).
"""

from __future__ import annotations

import contextlib
import re

import orjson
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from monitor.store.errors import StoreError, StoreUnavailable

__all__ = ["SQLITE_BEGIN_OPTION", "create_store_engine", "masked_url", "redact", "translate_error"]

# user:password@ in anything that looks like a URL, for text SQLAlchemy cannot parse.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@")
MASK = "***"

# Execution option naming how SQLite transactions begin ("IMMEDIATE" for writers).
SQLITE_BEGIN_OPTION = "driftd_sqlite_begin"

# How long SQLite waits for another writer's lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a PostgreSQL connection attempt may take before the store is "unavailable".
PG_CONNECT_TIMEOUT_S = 5


def _password(url: str) -> str | None:
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any parse failure: find it by position
        parsed = None
    if parsed is not None and "@" not in str(parsed.host or ""):
        return None if parsed.password is None else str(parsed.password)
    return _userinfo(url)[1]


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, also when it does not parse.

    >>> masked_url("postgresql+psycopg://driftd:hunter2@db:5432/driftd")
    'postgresql+psycopg://driftd:***@db:5432/driftd'
    >>> masked_url("mysql://dbuser:p@ss:w0rd@db:notaport/x")
    'mysql://dbuser:***@db:notaport/x'
    >>> masked_url("no scheme dbuser:hunter2@db")
    'no scheme dbuser:***@db'
    """
    password = _password(url)
    if password is None:
        return url
    with contextlib.suppress(Exception):  # unparseable: masked by position below
        parsed = make_url(url)
        if parsed.password is not None and str(parsed.password) == password:
            return parsed.render_as_string(hide_password=True)
    user, positional, _ = _userinfo(url)
    return url.replace(f"{user}:{positional}@", f"{user}:{MASK}@", 1)


def _userinfo(url: str) -> tuple[str, str | None, int]:
    """(user, password or None, end) of a URL's user information, by position only.

    A password may itself hold "@" or ":" (unencoded): the user information runs from
    after "//" (or the start) to the last "@".
    """
    at = url.rfind("@")
    if at < 0:
        return "", None, 0
    start = url.find("//")
    start = 0 if start < 0 or start > at else start + 2
    userinfo = url[start:at]
    if ":" not in userinfo:
        return userinfo, None, at
    user, password = userinfo.split(":", 1)
    return user, password, at


def redact(text: str, url: str) -> str:
    """``text`` (an error message) without ``url``'s password, however it was quoted."""
    text = text.replace(url, masked_url(url))
    password = _password(url)
    if password:
        text = text.replace(password, MASK)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


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
