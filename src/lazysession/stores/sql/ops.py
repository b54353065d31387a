"""The session operations of the SQL store (read, save, touch, merge, rotate, end),
each written once, free of I/O, as ``runs`` describes; the owner index's are in
``owners``, the table's upkeep (creating, counting, sweeping) in ``upkeep``.

Rules:
- ``now`` comes from the store's clock and is passed as a parameter, so every dialect
  compares expiry the same way and tests can move time by hand.
- A merge first tries one statement that stores the writer's whole session if the row
  still holds the copy the writer loaded (compared byte for byte); only when another write
  came in between does it read the row under a lock (a row lock, or SQLite's write lock)
  and merge with the contract's ``merge_onto``, so the rules of merging, emptying and
  ``max_size`` are the same on every dialect.
- A retired id is a row holding a marker (``=>``, then the successor's key for a
  rotation: never JSON) that expires after ``RETIRED_MEMORY`` seconds, and no owner;
  ending a session turns its row into one.
- Only ``save`` and ``rotate`` (its new row) write the owner (see ``owners``); each write
  and touch sets ``updated_at``, when the session was last seen, to ``now``.
- A rotation creates the new row first (unless that id is taken, by a logout's marker),
  then turns the old row into a marker naming it, if the old row still holds what was
  merged (else it merges again). Once the new row exists the login has succeeded: if the
  old row's retirement then fails with the store, the old id lives on with only what it
  held before the login, and the browser moves to the new one, so an interrupted login
  never leaves the browser holding an id whose data moved on.
- Statements never touch a marker but to follow it (``delete``) or let it expire.
- Every statement is built once per store, with bind parameters: each call only hands
  its values in (SQLAlchemy's compiled cache then serves every call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ... import _json
from ..._errors import StoreError
from ..._expiry import ORIGIN
from .._base import FOLLOW_ROTATIONS as _FOLLOW
from .._base import (
    RETIRED_MEMORY,
    Changes,
    Merge,
    Record,
    byte_size,
    merge_onto,
    origin_of,
    owner_of_changes,
    with_origin,
)
from .dialects import SQLDialect
from .runs import Op, Plan, Run, one

MARKER = "=>"
_ATTEMPTS = 5  # merges a rotation tries while other writes keep changing the old row
_MEMORY = timedelta(seconds=RETIRED_MEMORY)


@dataclass(frozen=True, slots=True, eq=False)
class Copy:
    """A ``Record.version``: the stored JSON the request loaded (a merge's one-statement
    path compares it), and the expiry it had (what a touch compares: a few bytes, where
    the JSON could be the whole session). Equal to another copy, or to the JSON, with
    the same text."""

    text: str
    expires_at: datetime

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Copy):
            return self.text == other.text
        if isinstance(other, str):
            return self.text == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def record_of(row: Any) -> Record | None:  # a Row; its generics differ across SQLAlchemy 2.x
    """The record for a row of ``data, expires_at`` (None: no row)."""
    if row is None:
        return None
    text: str = row.data
    if text.startswith(MARKER):
        return Record({}, row.expires_at, retired=True, rotated=text != MARKER)
    data = _json.loads(text)
    if data is None:
        return None
    return Record(data, row.expires_at, Copy(text, row.expires_at), byte_size(text))


class SessionOps:
    """The session operations and their statements, for one table and one dialect (the
    owner index and the upkeep build theirs on these: ``OwnerOps``, ``UpkeepOps``)."""

    def __init__(self, table: sa.Table, dialect: SQLDialect) -> None:
        self.table = table
        self.dialect = dialect
        c = table.c
        live = sa.and_(c.session_id == sa.bindparam("sid"), c.expires_at > sa.bindparam("now"))
        not_marker = sa.not_(c.data.startswith(MARKER, autoescape=True))
        unchanged = dialect.comparable(c.data) == sa.bindparam("base")
        self._upsert = dialect.upsert(table)
        self._insert_new = dialect.insert_new(table)
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
            "owner": sa.null(),
        }
        self.ended_values = ended
        self._end_if_unchanged = sa.update(table).where(live, unchanged).values(ended)
        retired = {**ended, "data": sa.bindparam("data")}
        self._retire_if_unchanged = sa.update(table).where(live, unchanged).values(retired)
        self._touch = (
            sa.update(table)
            .where(live, not_marker)
            .values(expires_at=sa.bindparam("expires"), updated_at=sa.bindparam("now"))
        )
        self._touch_if_unmoved = self._touch.where(c.expires_at == sa.bindparam("loaded"))
        self._end = (
            sa.update(table).where(c.session_id == sa.bindparam("sid"), not_marker).values(ended)
        )
        # A session with no rotation behind it (no origin anywhere in its JSON) ends in
        # one statement; one that names an origin is read first (``_follow_plan``).
        no_origin = sa.not_(c.data.contains(f'"{ORIGIN}":"', autoescape=True))
        self._end_plain = self._end.where(no_origin)
        # An ended id (a marker naming no successor) takes one, once.
        self._claim = (
            sa.update(table)
            .where(live, dialect.comparable(c.data) == sa.bindparam("ended"))
            .values(data=sa.bindparam("data"))
        )
        self.live = live
        self.not_marker = not_marker

    # -- operations --------------------------------------------------------------------------

    def read(self, sid: str, now: datetime) -> Op[Record | None]:
        record: Record | None = yield Run(self._read_plan(sid, now), writes=False)
        return record

    def save(
        self, sid: str, text: str, owner: str | None, now: datetime, expires_at: datetime
    ) -> Op[None]:
        params = {"sid": sid, "data": text, "now": now, "expires": expires_at, "owner": owner}
        yield Run(one(self._upsert, params))

    def touch(self, sid: str, now: datetime, expires_at: datetime, base: object = None) -> Op[bool]:
        params: dict[str, Any] = {"sid": sid, "now": now, "expires": expires_at}
        if isinstance(base, Copy):  # only the copy the toucher loaded
            params["loaded"] = base.expires_at
            return bool((yield Run(one(self._touch_if_unmoved, params))).rowcount)
        return bool((yield Run(one(self._touch, params))).rowcount)

    def update(self, sid: str, changes: Changes, now: datetime, expires_at: datetime) -> Op[Merge]:
        params: dict[str, Any] = {"sid": sid, "now": now, "expires": expires_at}
        base = changes.base.text if isinstance(changes.base, Copy) else None
        if changes.replace and not changes.own_meta and base is not None:
            # Cleared, with the metadata as loaded: stored whole only over that same copy.
            assert changes.whole is not None
            params["data"], params["base"] = changes.whole, base
            if (yield Run(one(self._if_unchanged, params))).rowcount:
                return Merge.APPLIED
        elif changes.replace:  # the request cleared the session first: no merge to do
            assert changes.whole is not None
            params["data"] = changes.whole
            done = (yield Run(one(self._replace, params))).rowcount
            return Merge.APPLIED if done else Merge.GONE
        if changes.whole is not None and base is not None:
            # No other write since the writer's load: its whole session is the merge.
            params["base"] = base
            if changes.empty:
                params["until"] = now + _MEMORY
                emptied = (yield Run(one(self._end_if_unchanged, params))).rowcount
                if emptied:
                    return Merge.EMPTIED
            else:
                params["data"] = changes.whole
                merge_onto(base, changes, base)  # checks max_size
                if (yield Run(one(self._if_unchanged, params))).rowcount:
                    return Merge.APPLIED
        merged: Merge = yield Run(self._merge_plan(sid, changes, now, expires_at), locked=True)
        return merged

    def rotate(
        self, old: str, new: str, changes: Changes, now: datetime, expires_at: datetime
    ) -> Op[Merge]:
        ended = {"now": now, "until": now + _MEMORY}
        owner = owner_of_changes(changes)
        created = False
        for _ in range(_ATTEMPTS):
            row = yield Run(self._row_plan(old, now), writes=False)
            if row is None or row.data.startswith(MARKER):
                if created:  # a logout won meanwhile: the new id ends too
                    yield Run(one(self._end, {"sid": new, **ended}))
                return Merge.GONE
            merged = merge_onto(row.data, changes, row.data).text
            if merged is None:
                yield Run(one(self._end, {"sid": old, **ended}))
                return Merge.EMPTIED
            origin = origin_of(row.data)
            if origin is not None and not created:  # a failed rotation left it live: no more
                yield Run(one(self._end, {"sid": origin, **ended}))
            merged = with_origin(merged, old)
            params = {"sid": new, "data": merged, "now": now, "expires": expires_at}
            if created:
                if not (yield Run(one(self._replace, params))).rowcount:
                    return Merge.GONE  # the new id was ended meanwhile (revoke_all)
            else:
                params["owner"] = owner
                if not self.dialect.took((yield Run(one(self._insert_new, params)))):
                    return Merge.GONE  # the new id is taken: a logout blocked it
                created = True
            retire = {"sid": old, "base": row.data, "data": MARKER + new, **ended}
            try:
                retired = (yield Run(one(self._retire_if_unchanged, retire))).rowcount
            except StoreError:
                return Merge.APPLIED  # the new id holds the session; the browser moves there
            if retired:
                return Merge.APPLIED
        raise StoreError("rotating a session failed: it kept changing under the rotation")

    def delete(self, sid: str, now: datetime) -> Op[None]:
        params = {"sid": sid, "now": now, "until": now + _MEMORY}
        if (yield Run(one(self._end_plain, params))).rowcount:
            return  # a session, ended: the usual case, in one statement
        yield Run(self._follow_plan(sid, now), locked=True)

    def claim(self, sid: str, new: str, now: datetime) -> Op[bool]:
        params = {"sid": sid, "now": now, "ended": MARKER, "data": MARKER + new}
        return bool((yield Run(one(self._claim, params))).rowcount)

    # -- plans -----------------------------------------------------------------------------

    def _read_plan(self, sid: str, now: datetime) -> Plan[Record | None]:
        result = yield self._read, {"sid": sid, "now": now}
        return record_of(result.first())

    def _merge_plan(
        self, sid: str, changes: Changes, now: datetime, expires_at: datetime
    ) -> Plan[Merge]:
        row = (yield self._read_locked, {"sid": sid, "now": now}).first()
        if row is None or row.data.startswith(MARKER):
            return Merge.GONE
        merge = merge_onto(row.data, changes, row.data)
        if merge.text is None:
            yield self._end, {"sid": sid, "now": now, "until": now + _MEMORY}
            return Merge.EMPTIED
        expires = row.expires_at if merge.keep_expiry else expires_at
        yield self._rewrite, {"sid": sid, "data": merge.text, "now": now, "expires": expires}
        return Merge.KEPT if merge.keep_expiry else Merge.APPLIED

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
            marker = {"sid": successor, "data": MARKER, "now": now, "expires": until, "owner": None}
            yield self._upsert, marker
            if following is None or not following.data.startswith(MARKER):
                return
            sid, row = successor, following
