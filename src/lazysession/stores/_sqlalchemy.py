"""The SQL store's former home; it lives in the ``sql`` package now."""

from .sql import DEFAULT_TABLE, SQLAlchemyStore, SweepPacer, UTCDateTime, session_table

__all__ = ["DEFAULT_TABLE", "SQLAlchemyStore", "SweepPacer", "UTCDateTime", "session_table"]
