"""The driftd store: SQLAlchemy 2 over SQLite (default) or PostgreSQL, with Alembic migrations.

>>> from monitor.store import open_store
>>> store = open_store("sqlite://")          # in memory; creates the tables
>>> store.current_revision() == store.head_revision()
True
"""

from monitor.store.errors import BaselineExists, StoreError, StoreUnavailable
from monitor.store.store import Store, open_store

__all__ = ["BaselineExists", "Store", "StoreError", "StoreUnavailable", "open_store"]
