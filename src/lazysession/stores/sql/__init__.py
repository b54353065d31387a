"""The SQL store: one table, through SQLAlchemy.

- ``store``: :class:`SQLAlchemyStore` and its blocking face;
- ``runs``: what an operation is made of; ``ops``: the session operations, each written
  once, free of I/O; ``owners``: the owner index's; ``upkeep``: the table's (creating,
  counting, sweep batches); ``pacing``: the sweep;
- ``executors``: one executor per side (and the worker-thread adapter for SQLite);
- ``dialects``: one object per dialect, a module each; ``schema``: the table; ``engines``
  and ``connections``: engines per event loop, and what each connection is set up with.
"""

from .pacing import SweepPacer
from .schema import DEFAULT_TABLE, UTCDateTime, session_table
from .store import SQLAlchemyStore

__all__ = ["DEFAULT_TABLE", "SQLAlchemyStore", "SweepPacer", "UTCDateTime", "session_table"]
