"""One object per SQL dialect: everything the store does differently on it.

Rules:
- A dialect is a class with the names SQLAlchemy gives it (``names``), in a module of
  its own beside ``base`` (what every dialect does unless it says otherwise); adding one
  means adding its module and listing it in ``_SUPPORTED``. Nothing elsewhere asks which
  dialect it runs on: it asks the dialect object.
- The sweep deletes in batches of at most ``batch_size`` rows, one short transaction
  each, in order of expiry; each dialect says how (see ``SQLDialect.sweep_batch``).
  Replicas sweeping at once never deadlock, and their counts add up to exactly the rows
  that were expired.
"""

from __future__ import annotations

from ...._errors import ConfigurationError
from .base import EPOCH, OnConflict, SQLDialect
from .mysql import MySQL
from .postgresql import PostgreSQL
from .sqlite import SQLITE_BATCH_SECONDS, SQLite, is_memory

__all__ = [
    "EPOCH",
    "SQLITE_BATCH_SECONDS",
    "MySQL",
    "OnConflict",
    "PostgreSQL",
    "SQLDialect",
    "SQLite",
    "dialect_named",
    "is_memory",
    "supported",
]

_SUPPORTED: tuple[SQLDialect, ...] = (PostgreSQL(), MySQL(), SQLite())
_BY_NAME = {name: dialect for dialect in _SUPPORTED for name in dialect.names}
_OTHER = SQLDialect()


def dialect_named(name: str) -> SQLDialect:
    """The dialect object for SQLAlchemy's dialect ``name`` (a default one for a
    dialect the store does not support, for the table's types)."""
    return _BY_NAME.get(name, _OTHER)


def supported(name: str) -> SQLDialect:
    """The dialect object for ``name``, or a configuration error."""
    found = _BY_NAME.get(name)
    if found is None:
        raise ConfigurationError(f"SQLAlchemyStore does not support the {name} dialect")
    return found
