"""The operations of the SQL store, each written once, free of I/O.

An operation is a generator of *runs*; a run is a plan (a generator of statements, each
result sent back in) with the transaction it needs. The store's async side and its sync
side each have one small executor that opens the connection a run asks for, sends its
statements and hands the results back: the rules below exist once, for both. A
*program* (the sweep, creating the table) is a generator of bounded calls (``Call``),
runs and pauses (``Rest``), driven the same way.

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

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

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
from .dialects import EPOCH, SQLDialect
from .schema import upgrade

T = TypeVar("T")

Plan = Generator[tuple[sa.Executable, dict[str, Any]], Any, T]
"""Statements with their parameters; each statement's result is sent back in."""

MARKER = "=>"
_ATTEMPTS = 5  # merges a rotation tries while other writes keep changing the old row
_MEMORY = timedelta(seconds=RETIRED_MEMORY)


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
class Batch:
    """What a sweep batch did: the rows it deleted, where the next batch resumes (None:
    from the start), and the ``(key, owner)`` of the owned rows it deleted, when asked."""

    deleted: int
    resume: datetime | None
    owned: list[tuple[str, str]] = field(default_factory=list)


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

# Creating the table races other processes doing the same; SQLite can answer 'database
# is locked' at once (switching to WAL, or a schema change seen mid-read), so retry.
CREATE_ATTEMPTS = 6


def create_backoff(attempt: int) -> float:
    return float(0.02 * 2**attempt * (0.5 + random.random()))  # noqa: S311 - jitter only


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
    """Every statement and operation of the store, for one table and one dialect."""

    def __init__(self, table: sa.Table, dialect: SQLDialect) -> None:
        self.table = table
        self.dialect = dialect
        c = table.c
        live = sa.and_(c.session_id == sa.bindparam("sid"), c.expires_at > sa.bindparam("now"))
        not_marker = sa.not_(c.data.startswith(MARKER, autoescape=True))
        unchanged = dialect.comparable(c.data) == sa.bindparam("base")
        self._upsert = dialect.upsert(table)
        self._insert_new = dialect.insert_new(table)
        self._count = (
            sa.select(sa.func.count()).select_from(table).where(not_marker)  # no retired ids
        )
        self._count_expired = (
            sa.select(sa.func.count()).select_from(table).where(c.expires_at <= sa.bindparam("now"))
        )
        self._oldest = sa.select(sa.func.min(c.created_at)).where(
            c.expires_at > sa.bindparam("now")
        )
        self._size = dialect.size_query(table.name)
        self._sweep_batch = dialect.sweep_batch(table.name)
        self._swept_batch = dialect.swept_batch(table.name)
        # The owners of a batch's rows, the rows locked in the order the batch's delete
        # takes them: anonymous rows come back as two NULLs.
        owned_id = sa.case((c.owner.is_not(None), c.session_id), else_=sa.null())
        self._claim_batch = (
            sa.select(owned_id.label("session_id"), c.owner)
            .where(c.expires_at <= sa.bindparam("now"))
            .order_by(c.expires_at)
            .limit(sa.bindparam("n", type_=sa.Integer()))
            .with_for_update()
        )
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
        yield Run(self._one(self._upsert, params))

    def touch(self, sid: str, now: datetime, expires_at: datetime, base: object = None) -> Op[bool]:
        params: dict[str, Any] = {"sid": sid, "now": now, "expires": expires_at}
        if isinstance(base, Copy):  # only the copy the toucher loaded
            params["loaded"] = base.expires_at
            return bool((yield Run(self._one(self._touch_if_unmoved, params))).rowcount)
        return bool((yield Run(self._one(self._touch, params))).rowcount)

    def update(self, sid: str, changes: Changes, now: datetime, expires_at: datetime) -> Op[Merge]:
        params: dict[str, Any] = {"sid": sid, "now": now, "expires": expires_at}
        base = changes.base.text if isinstance(changes.base, Copy) else None
        if changes.replace and not changes.own_meta and base is not None:
            # Cleared, with the metadata as loaded: stored whole only over that same copy.
            assert changes.whole is not None
            params["data"], params["base"] = changes.whole, base
            if (yield Run(self._one(self._if_unchanged, params))).rowcount:
                return Merge.APPLIED
        elif changes.replace:  # the request cleared the session first: no merge to do
            assert changes.whole is not None
            params["data"] = changes.whole
            done = (yield Run(self._one(self._replace, params))).rowcount
            return Merge.APPLIED if done else Merge.GONE
        if changes.whole is not None and base is not None:
            # No other write since the writer's load: its whole session is the merge.
            params["base"] = base
            if changes.empty:
                params["until"] = now + _MEMORY
                emptied = (yield Run(self._one(self._end_if_unchanged, params))).rowcount
                if emptied:
                    return Merge.EMPTIED
            else:
                params["data"] = changes.whole
                merge_onto(base, changes, base)  # checks max_size
                if (yield Run(self._one(self._if_unchanged, params))).rowcount:
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
                    yield Run(self._one(self._end, {"sid": new, **ended}))
                return Merge.GONE
            merged = merge_onto(row.data, changes, row.data).text
            if merged is None:
                yield Run(self._one(self._end, {"sid": old, **ended}))
                return Merge.EMPTIED
            merged = with_origin(merged, old)
            params = {"sid": new, "data": merged, "now": now, "expires": expires_at}
            if created:
                if not (yield Run(self._one(self._replace, params))).rowcount:
                    return Merge.GONE  # the new id was ended meanwhile (revoke_all)
            else:
                params["owner"] = owner
                if not self.dialect.took((yield Run(self._one(self._insert_new, params)))):
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

    def count(self) -> Op[int]:
        return int((yield Run(self._one(self._count, {}), writes=False, bulk=True)).scalar_one())

    def count_expired(self, now: datetime) -> Op[int]:
        run = Run(self._one(self._count_expired, {"now": now}), writes=False, bulk=True)
        return int((yield run).scalar_one())

    def oldest_created(self, now: datetime) -> Op[datetime | None]:
        found: datetime | None = (
            yield Run(self._one(self._oldest, {"now": now}), writes=False, bulk=True)
        ).scalar()
        return found

    def table_bytes(self) -> Op[int | None]:
        if self._size is None:
            return None
        size = (yield Run(self._one(self._size, {}), writes=False, bulk=True)).scalar()
        return None if size is None else int(size)

    def sweep_batch(
        self, now: datetime, after: datetime | None, size: int, report: bool = False
    ) -> Op[Batch]:
        """One batch of the sweep, in its own short transaction: the rows deleted, where
        the next batch resumes, and, with ``report``, the ``(key, owner)`` of the owned
        rows it deleted (else none).

        A reported row was deleted by this batch and by no other sweeper's: the batch's
        delete returns them where the dialect can (``SQLDialect.swept_batch``); elsewhere
        the batch's rows are read first, in its transaction, locking them (a row lock,
        or SQLite's write lock) in the order the delete takes them."""
        params = {"now": now, "after": after or EPOCH, "n": size}
        if not report:
            plan: Plan[Batch] = self._batch_plan(params, after)
        elif self._swept_batch is not None:
            plan = self._swept_plan(params, after)
        else:
            plan = self._claimed_plan(params, after)
        batch: Batch = yield Run(
            plan,
            locked=True,
            before=self.dialect.before_batch,
            after=self.dialect.after_batch,
            options=self.dialect.sweep_options,
            bulk=True,
        )
        if self.dialect.after_sweep:
            yield Run(self._statements(self.dialect.after_sweep), writes=False, bulk=True)
        return batch

    def create(self, tune_file: bool) -> Program[None]:
        """Create the table unless it exists (adding what an older one lacks), trying
        again while SQLite is locked; ``tune_file``: switch a SQLite file the store opened
        to WAL first."""
        for attempt in range(CREATE_ATTEMPTS):
            try:
                yield Run(None, call=lambda c: self._create(c, tune_file), bulk=True)
                return
            except StoreError:
                if attempt + 1 == CREATE_ATTEMPTS:
                    raise
            yield Rest(create_backoff(attempt))

    def _create(self, connection: sa.Connection, tune_file: bool) -> None:
        """A replica that loses the race to another one's CREATE finds the table there
        and goes on."""
        if tune_file:
            # WAL lets readers go on while the sweep writes; it is stored in the file.
            connection.exec_driver_sql("PRAGMA journal_mode = WAL")
            connection.commit()
        try:
            with connection.begin_nested() if connection.in_transaction() else connection.begin():
                self.dialect.before_create(connection, self.table)
                self.table.create(connection, checkfirst=True)
        except sa.exc.DBAPIError:
            if not sa.inspect(connection).has_table(self.table.name):
                raise
        upgrade(connection, self.table, self.dialect)

    # -- plans -----------------------------------------------------------------------------

    @staticmethod
    def _statements(statements: Sequence[str]) -> Plan[None]:
        for statement in statements:
            yield sa.text(statement), {}

    @staticmethod
    def _one(statement: sa.Executable, params: dict[str, Any]) -> Plan[Any]:
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

    def _batch_plan(self, params: dict[str, Any], after: datetime | None) -> Plan[Batch]:
        result = yield self._sweep_batch, params
        return Batch(*self.dialect.read_batch(result, after))

    def _swept_plan(self, params: dict[str, Any], after: datetime | None) -> Plan[Batch]:
        assert self._swept_batch is not None
        result = yield self._swept_batch, params
        return Batch(*self.dialect.read_swept(result, after))

    def _claimed_plan(self, params: dict[str, Any], after: datetime | None) -> Plan[Batch]:
        claimed = (yield self._claim_batch, params).all()
        if not claimed:
            return Batch(0, after)
        result = yield self._sweep_batch, params
        deleted, resume = self.dialect.read_batch(result, after)
        owned = [(row.session_id, row.owner) for row in claimed if row.owner is not None]
        return Batch(deleted, resume, owned)

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
