"""The driftd store: SQLAlchemy 2 over SQLite (default) or PostgreSQL, with Alembic migrations.

:func:`open_store` returns a :class:`Store` (synchronous, one transaction per call);
:class:`StoreWriter` puts a bounded, retrying background queue in front of it for
the daemon. ``docs/store.md`` describes the tables, migrations and retention.

>>> from monitor.store import open_store
>>> store = open_store("sqlite://")          # in memory; creates the tables
>>> store.current_revision() == store.head_revision()
True
>>> store.save_checkpoint("driftd", {"predictions:0": 42}, b"state")
>>> store.load_checkpoint("driftd")
({'predictions:0': 42}, b'state')
"""

from monitor.store.alarms import AlarmRecord
from monitor.store.errors import BaselineExists, StoreError, StoreUnavailable
from monitor.store.records import (
    BaselineInfo,
    ExplanationRecord,
    FeatureRecord,
    ModelSummary,
    WindowRecord,
)
from monitor.store.store import Store, open_store
from monitor.store.writer import StoreWriter

__all__ = [
    "AlarmRecord",
    "BaselineExists",
    "BaselineInfo",
    "ExplanationRecord",
    "FeatureRecord",
    "ModelSummary",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoreWriter",
    "WindowRecord",
    "open_store",
]
