"""The session operations of the SQL store, each written once, free of I/O.

An operation is a generator of *runs*; a run is a plan (a generator of statements, each
result sent back in) with the transaction it needs. The store's async side and its sync
side each have one small executor that opens the connection a run asks for, sends its
statements and hands the results back: the rules below exist once, for both.

Rules:
- ``now`` comes from the store's clock and is passed as a parameter, so every dialect
  compares expiry the same way and tests can move time by hand.
- A merge first tries one statement that stores the writer's whole session if the row
  still holds the copy the writer loaded (compared byte for byte); only when another write
  came in between does it read the row under a lock (a row lock, or SQLite's write lock)
  and merge with the contract's ``merge_onto``, so the rules of merging, emptying and
  ``max_size`` are the same on every dialect.
- A retired id is a row holding a marker (``=>``, then the successor's key for a
  rotation: never JSON) that expires after ``RETIRED_MEMORY`` seconds; ending a session
  turns its row into one.
- A rotation creates the new row first (unless that id is taken, by a logout's marker),
  then turns the old row into a marker naming it, if the old row still holds what was
  merged (else it merges again). Once the new row exists the login has succeeded: if the
  old row's retirement then fails with the store, the old id lives on with only what it
  held before the login, and the browser moves to the new one, so an interrupted login
  never leaves the browser holding an id whose data moved on.
- Statements never touch a marker but to follow it (``delete``) or let it expire.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from .. import _json
from .._errors import ConfigurationError, StoreError
from .._expiry import ORIGIN
from ._base import (
    RETIRED_MEMORY,
    Changes,
    Merge,
    Record,
    byte_size,
    merge_onto,
    origin_of,
    with_origin,
)

T = TypeVar("T")

Plan = Generator[tuple[sa.Executable, dict[str, Any]], Any, T]
"""Statements with their parameters; each statement's result is sent back in."""

MARKER = "=>"
_FOLLOW = 4  # rotations a logout follows, at most
_ATTEMPTS = 5  # merges a rotation tries while other writes keep changing the old row
_MEMORY = timedelta(seconds=RETIRED_MEMORY)


@dataclass(slots=True)
class Run:
    """A plan and the transaction it needs: ``locked`` reads lock what they read (row
    locks, or SQLite's write lock taken up front); otherwise each statement commits on
    its own. ``writes``: it writes (SQLite's writers of one process take turns)."""

    plan: Plan[Any]
    locked: bool = False
    writes: bool = True


Op = Generator[Run, Any, T]
"""An operation: the runs it needs, each run's result sent back in."""


def record_of(row: Any) -> Record | None:  # a Row; its generics differ across SQLAlchemy 2.x
    """The record for a row of ``data, expires_at`` (None: no row)."""
    if row is None:
        return None
    text: str = row.data
    if text.startswith(MARKER):
        return Record({}, row.expires_at, retired=True)
    data = _json.loads(text)
    return None if data is None else Record(data, row.expires_at, text, byte_size(text))


class SessionOps:
    """Every statement and operation of the store, for one table and one dialect."""

    def __init__(self, table: sa.Table, dialect: str) -> None:
        self.table = table
        self.dialect = dialect
        c = table.c
        live = sa.and_(c.session_id == sa.bindparam("sid"), c.expires_at > sa.bindparam("now"))
        not_marker = sa.not_(c.data.startswith(MARKER, autoescape=True))
        # Compared byte for byte (MariaDB/MySQL's default collation ignores case).
        data = c.data.collate("utf8mb4_bin") if dialect in ("mysql", "mariadb") else c.data
        unchanged = data == sa.bindparam("base")
        self._read = sa.select(c.data, c.expires_at).where(live)
        self._read_locked = self._read.with_for_update()
        self._any_locked = sa.select(c.data).where(c.session_id == sa.bindparam("sid"))
        self._any_locked = self._any_locked.with_for_update()
        values: dict[str, Any] = {
            "data": sa.bindparam("data"),
            "expires_at": sa.bindparam("expires"),
            "updated_at": sa.bindparam("now"),
        }
        self._rewrite = sa.update(table).where(c.session_id == sa.bindparam("sid")).values(values)
        self._replace = sa.update(table).where(live, not_marker).values(values)
        self._if_unchanged = sa.update(table).where(live, unchanged).values(values)
        ended = {
            "data": MARKER,
            "expires_at": sa.bindparam("until"),
            "updated_at": sa.bindparam("now"),
        }
        self._end_if_unchanged = sa.update(table).where(live, unchanged).values(ended)
        retired = {**ended, "data": sa.bindparam("data")}
        self._retire_if_unchanged = sa.update(table).where(live, unchanged).values(retired)
        self._touch = (
            sa.update(table)
            .where(live, not_marker)
            .values(expires_at=sa.bindparam("expires"), updated_at=sa.bindparam("now"))
        )
        self._end = (
            sa.update(table).where(c.session_id == sa.bindparam("sid"), not_marker).values(ended)
        )
        # A session with no rotation behind it (no origin anywhere in its JSON) ends in
        # one statement; one that names an origin is read first (``_follow_plan``).
        no_origin = sa.not_(c.data.contains(f'"{ORIGIN}":"', autoescape=True))
        self._end_plain = self._end.where(no_origin)

    # -- operations --------------------------------------------------------------------------

    def read(self, sid: str, now: datetime) -> Op[Record | None]:
        record: Record | None = yield Run(self._read_plan(sid, now), writes=False)
        return record

    def save(self, sid: str, text: str, now: datetime, expires_at: datetime) -> Op[None]:
        yield Run(self._one(self.upsert(sid, text, now, expires_at), {}))

    def touch(self, sid: str, now: datetime, expires_at: datetime) -> Op[bool]:
        params = {"sid": sid, "now": now, "expires": expires_at}
        return bool((yield Run(self._one(self._touch, params))).rowcount)

    def update(self, sid: str, changes: Changes, now: datetime, expires_at: datetime) -> Op[Merge]:
        params: dict[str, Any] = {"sid": sid, "now": now, "expires": expires_at}
        if changes.replace:  # the request cleared the session first: no merge to do
            assert changes.whole is not None
            params["data"] = changes.whole
            done = (yield Run(self._one(self._replace, params))).rowcount
            return Merge.APPLIED if done else Merge.GONE
        if changes.whole is not None and isinstance(changes.base, str):
            # No other write since the writer's load: its whole session is the merge.
            params["base"] = changes.base
            if changes.empty:
                params["until"] = now + _MEMORY
                emptied = (yield Run(self._one(self._end_if_unchanged, params))).rowcount
                if emptied:
                    return Merge.EMPTIED
            else:
                params["data"] = changes.whole
                merge_onto(changes.base, changes, changes.base)  # checks max_size
                if (yield Run(self._one(self._if_unchanged, params))).rowcount:
                    return Merge.APPLIED
        merged: Merge = yield Run(self._merge_plan(sid, changes, now, expires_at), locked=True)
        return merged

    def rotate(
        self, old: str, new: str, changes: Changes, now: datetime, expires_at: datetime
    ) -> Op[Merge]:
        ended = {"now": now, "until": now + _MEMORY}
        created = False
        for _ in range(_ATTEMPTS):
            row = yield Run(self._row_plan(old, now), writes=False)
            if row is None or row.data.startswith(MARKER):
                if created:  # a logout won meanwhile: the new id ends too
                    yield Run(self._one(self._end, {"sid": new, **ended}))
                return Merge.GONE
            merged = merge_onto(row.data, changes, row.data).text
            if merged is None:
                yield Run(self._one(self._end, {"sid": old, **ended}))
                return Merge.EMPTIED
            merged = with_origin(merged, old)
            if created:
                params = {"sid": new, "data": merged, "now": now, "expires": expires_at}
                yield Run(self._one(self._rewrite, params))
            else:
                insert = self.insert_new(new, merged, now, expires_at)
                if not self._took((yield Run(self._one(insert, {})))):
                    return Merge.GONE  # the new id is taken: a logout blocked it
                created = True
            retire = {"sid": old, "base": row.data, "data": MARKER + new, **ended}
            try:
                retired = (yield Run(self._one(self._retire_if_unchanged, retire))).rowcount
            except StoreError:
                return Merge.APPLIED  # the new id holds the session; the browser moves there
            if retired:
                return Merge.APPLIED
        raise StoreError("rotating a session failed: it kept changing under the rotation")

    def delete(self, sid: str, now: datetime) -> Op[None]:
        params = {"sid": sid, "now": now, "until": now + _MEMORY}
        if (yield Run(self._one(self._end_plain, params))).rowcount:
            return  # a session, ended: the usual case, in one statement
        yield Run(self._follow_plan(sid, now), locked=True)

    # -- plans -----------------------------------------------------------------------------

    @staticmethod
    def _one(statement: sa.Executable, params: dict[str, Any]) -> Plan[Any]:
        return (yield statement, params)

    def _read_plan(self, sid: str, now: datetime) -> Plan[Record | None]:
        result = yield self._read, {"sid": sid, "now": now}
        return record_of(result.first())

    def _merge_plan(
        self, sid: str, changes: Changes, now: datetime, expires_at: datetime
    ) -> Plan[Merge]:
        row = (yield self._read_locked, {"sid": sid, "now": now}).first()
        if row is None or row.data.startswith(MARKER):
            return Merge.GONE
        merged = merge_onto(row.data, changes, row.data).text
        if merged is None:
            yield self._end, {"sid": sid, "now": now, "until": now + _MEMORY}
            return Merge.EMPTIED
        yield self._rewrite, {"sid": sid, "data": merged, "now": now, "expires": expires_at}
        return Merge.APPLIED

    def _row_plan(self, sid: str, now: datetime) -> Plan[Any]:
        return (yield self._read, {"sid": sid, "now": now}).first()

    def _follow_plan(self, sid: str, now: datetime) -> Plan[None]:
        """A logout with a retired id ends the session it was rotated to (and what that
        one moved to), keeping each such id from being created by a rotation under way."""
        row = (yield self._any_locked, {"sid": sid}).first()
        for _ in range(_FOLLOW):
            if row is None:
                return
            if not row.data.startswith(MARKER):
                yield self._end, {"sid": sid, "now": now, "until": now + _MEMORY}
                origin = origin_of(row.data)
                if origin is not None:  # a rotation that may not have retired it
                    yield self._end, {"sid": origin, "now": now, "until": now + _MEMORY}
                return
            successor = row.data[len(MARKER) :]
            if not successor:
                return
            until = now + _MEMORY
            yield self._rewrite, {"sid": sid, "data": MARKER, "now": now, "expires": until}
            following = (yield self._any_locked, {"sid": successor}).first()
            yield self.upsert(successor, MARKER, now, until), {}
            if following is None or not following.data.startswith(MARKER):
                return
            sid, row = successor, following

    # -- statements that depend on the dialect ---------------------------------------------

    def upsert(self, sid: str, text: str, now: datetime, expires_at: datetime) -> sa.Executable:
        values = self._values(sid, text, now, expires_at)
        changed = {"data": text, "updated_at": now, "expires_at": expires_at}
        if self.dialect == "postgresql":
            pg = postgresql.insert(self.table).values(values)
            return pg.on_conflict_do_update(index_elements=["session_id"], set_=changed)
        if self.dialect == "sqlite":
            lite = sqlite.insert(self.table).values(values)
            return lite.on_conflict_do_update(index_elements=["session_id"], set_=changed)
        if self.dialect in ("mysql", "mariadb"):
            return mysql.insert(self.table).values(values).on_duplicate_key_update(changed)
        raise ConfigurationError(f"SQLAlchemyStore does not support the {self.dialect} dialect")

    def insert_new(self, sid: str, text: str, now: datetime, expires_at: datetime) -> sa.Executable:
        """An insert that does nothing when the id is already taken (see ``_took``)."""
        values = self._values(sid, text, now, expires_at)
        key = self.table.c.session_id
        if self.dialect == "postgresql":
            pg = postgresql.insert(self.table).values(values).on_conflict_do_nothing()
            return pg.returning(key)
        if self.dialect == "sqlite":
            return sqlite.insert(self.table).values(values).on_conflict_do_nothing().returning(key)
        return mysql.insert(self.table).values(values).prefix_with("IGNORE")

    def _took(self, result: Any) -> bool:
        """Whether ``insert_new`` inserted (psycopg reports no rowcount for it: RETURNING)."""
        if self.dialect in ("postgresql", "sqlite"):
            return result.first() is not None
        return bool(result.rowcount)

    @staticmethod
    def _values(sid: str, text: str, now: datetime, expires_at: datetime) -> dict[str, Any]:
        return {
            "session_id": sid,
            "data": text,
            "created_at": now,
            "updated_at": now,
            "expires_at": expires_at,
        }
