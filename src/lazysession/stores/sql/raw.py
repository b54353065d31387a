"""The store's statements sent straight to a SQLite connection, compiled once each.

A SQLite call on the event loop is short enough that SQLAlchemy's execution machinery
(an execution context, a cursor wrapper and a result object per statement) costs more
than SQLite itself. The statements are SQLAlchemy's all the same: each is compiled by
SQLAlchemy for the connection's dialect, once, and then run here with the very bind and
result processing SQLAlchemy would apply (its compiled bind processors, its result
processors for each column), on the connection's DBAPI cursor.

Rules:
- Only the statements of ``ops`` and paced sweep batches are run here (no expanding
  ``IN``, no executemany); a text statement's rows are the driver's, unprocessed.
- A result offers what the operations read: ``rowcount``, ``all()``, ``first()``, ``one()``,
  ``scalar()`` and ``scalar_one()``, rows with their columns by name.
- Errors are the driver's own, unwrapped (the store's error rules cover them).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


class RawResult:
    """Rows fetched in full, and the row count."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self.rows

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise (
                sa.exc.NoResultFound("expected one row")
                if not self.rows
                else (sa.exc.MultipleResultsFound("expected one row"))
            )
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


class _Compiled:
    """One statement, compiled for one dialect."""

    __slots__ = ("binds", "compiled", "row", "sql", "values")

    def __init__(self, statement: sa.Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.compiled = compiled
        self.sql: str = compiled.string
        processors = compiled._bind_processors
        self.binds: list[tuple[str, Processor]] = [
            (name, processors.get(name)) for name in compiled.positiontup or ()
        ]
        columns = getattr(compiled, "_result_columns", None) or []
        self.values: Sequence[Processor] = [
            column.type._cached_result_processor(dialect, None) for column in columns
        ]
        self.row: Any = (
            namedtuple("Row", [column.keyname for column in columns], rename=True)
            if columns
            else None
        )

    def parameters(self, params: dict[str, Any]) -> list[Any]:
        given = self.compiled.construct_params(params, _check=False)
        return [
            given[name] if process is None else process(given[name]) for name, process in self.binds
        ]

    def result(self, cursor: Any) -> RawResult:
        if self.row is None:  # a text statement's rows (``RETURNING``) come as they are
            found = cursor.fetchall() if cursor.description is not None else []
            return RawResult(found, cursor.rowcount)
        values, make = self.values, self.row._make
        rows = [
            make(
                [
                    value if process is None else process(value)
                    for process, value in zip(values, found, strict=True)
                ]
            )
            for found in cursor.fetchall()
        ]
        return RawResult(rows, cursor.rowcount)


class RawStatements:
    """Statements compiled for one dialect, run on DBAPI connections."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[int, tuple[sa.Executable, _Compiled]] = {}

    def execute(self, connection: Any, statement: sa.Executable, params: dict[str, Any]) -> Any:
        found = self._compiled.get(id(statement))
        if found is None or found[0] is not statement:
            found = self._compiled[id(statement)] = (statement, _Compiled(statement, self.dialect))
        compiled = found[1]
        cursor = connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(params))
            return compiled.result(cursor)
        finally:
            cursor.close()
