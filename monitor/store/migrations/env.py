"""Alembic environment of the driftd store, run programmatically by ``Store.migrate()``.

``Store.migrate()`` hands over an open connection in ``config.attributes["connection"]``
(so the SQLite pragmas and the PostgreSQL search path of the store's engine apply);
``alembic -c`` style use with ``sqlalchemy.url`` works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from monitor.store.schema import Base

target_metadata = Base.metadata

# Any constant: serialises concurrent upgrades from several daemons on PostgreSQL.
_PG_LOCK_ID = 0x64726966  # "drif"


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("select pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Only Alembic runs this module; importing it elsewhere (doctest collection) is harmless.
if hasattr(context, "config"):
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
