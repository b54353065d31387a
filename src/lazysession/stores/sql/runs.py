"""What an operation of the SQL store is made of, and what its executors run.

An operation is a generator of *runs*; a run is a plan (a generator of statements, each
result sent back in) with the transaction it needs. The store's async side and its sync
side each have one small executor that opens the connection a run asks for, sends its
statements and hands the results back: the rules of ``ops``, ``owners`` and ``upkeep``
exist once, for both. A *program* (the sweep, creating the table) is a generator of
bounded calls (``Call``), runs and pauses (``Rest``), driven the same way.

Rules:
- Nothing here does I/O or knows a table: these are the words operations and executors
  share.
- A plan reads a result that returns rows in full before its run ends (``one``): a run's
  connection goes back to the pool when the run ends.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")

Plan = Generator[tuple[sa.Executable, dict[str, Any]], Any, T]
"""Statements with their parameters; each statement's result is sent back in."""


@dataclass(slots=True)
class Run:
    """A plan and the transaction it needs: ``locked`` reads lock what they read (row
    locks, or SQLite's write lock taken up front), all in one transaction; otherwise
    each statement commits on its own. ``writes``: it writes (SQLite's writers of one
    process take turns). A locked run may name statements to run on its connection
    ``before`` (each committed) and ``after`` its transaction (outside the writers'
    turn), and execution ``options`` for it. A run with a ``call`` instead of a plan
    hands a connection to it (a blocking one; committed after). ``bulk``: it may take
    long (a scan, a sweep batch), so it is never served on an event loop's thread."""

    plan: Plan[Any] | None
    locked: bool = False
    writes: bool = True
    before: Sequence[str] = ()
    after: Sequence[str] = ()
    options: dict[str, Any] = field(default_factory=dict)
    call: Callable[[sa.Connection], Any] | None = None
    bulk: bool = False
    pending: tuple[sa.Executable, dict[str, Any]] | None = None
    """A statement of the plan's still to send (a run that moved off the event loop)."""


Op = Generator[Run, Any, T]
"""An operation: the runs it needs, each run's result sent back in. Its runs fail with
:class:`~lazysession.StoreError`, thrown into the operation (which may know what a
failed run means); it runs as one call, within the store's timeout."""


@dataclass(slots=True)
class Rest:
    """A pause of a program, between its calls."""

    seconds: float


@dataclass(slots=True)
class Call:
    """One operation of a program, run as a call of its own (its own timeout)."""

    action: str
    op: Op[Any]


Program = Generator["Call | Run | Rest", Any, T]
"""Calls, runs and rests; each one's result (None for a rest) sent back in, and each
failure (a :class:`~lazysession.StoreError`) thrown in."""


def statements(texts: Sequence[str]) -> Plan[None]:
    """Each of ``texts``, a statement with no parameters."""
    for statement in texts:
        yield sa.text(statement), {}


def one(statement: sa.Executable, params: dict[str, Any]) -> Plan[Any]:
    """One statement; its rows, if it returns any, read in full while the run still
    holds the connection. A result read after the run would read from a connection
    back in the pool, maybe another thread's by then, and on SQLite an INSERT or
    DELETE with ``RETURNING`` left part-read keeps its statement, and its
    autocommitted transaction, open there (the next COMMIT on that connection is
    refused: "SQL statements in progress")."""
    result = yield statement, params
    if getattr(result, "returns_rows", False):
        return result.freeze()()
    return result
