"""The SQL store: one table, through SQLAlchemy.

- ``store``: :class:`SQLAlchemyStore` and its blocking face;
- ``ops``: every operation, written once, free of I/O; ``owners``: the owner index's;
  ``pacing``: the sweep;
- ``executors``: one executor per side (and the worker-thread adapter for SQLite);
- ``dialects``: one object per dialect; ``schema``: the table; ``engines`` and
  ``connections``: engines per event loop, and what each connection is set up with.
"""

from .pacing import SweepPacer
from .schema import DEFAULT_TABLE, UTCDateTime, session_table
from .store import SQLAlchemyStore

__all__ = ["DEFAULT_TABLE", "SQLAlchemyStore", "SweepPacer", "UTCDateTime", "session_table"]
