"""The SQL store's upkeep of its table, each operation written once, free of I/O (run by
the executors as ``ops``' are): creating the table, counting and measuring it, and the
sweep's batches (paced by ``pacing``).

Rules:
- ``now`` comes from the store's clock and is passed as a parameter, as in ``ops``.
- Every run here is ``bulk`` (a scan, a sweep batch, a schema change): it is never
  served on an event loop's thread; except a batch paced to a time budget
  (``SQLDialect.sweep_budget``: SQLite), short by its pace, which is served where any
  other write would be (on the loop, saving the thread hops that would cost as much as
  it does; waiting for another process's lock, in a thread).
- ``count`` counts sessions, not retired ids (markers); ``count_expired`` counts every
  expired row, the backlog a sweep would delete now.
- A sweep batch is one short transaction of its own, deleting at most its size of rows
  expired by ``now``, oldest first, as the dialect says (``SQLDialect.sweep_batch``);
  a batch that reports its owned rows reports each such row once across replicas.
- The dialect's checkpoint (``SQLDialect.after_sweep``) is an operation of its own,
  outside the writers' turn, run when the sweep's pace says (``pacing``).
- Creating the table races other processes doing the same: a replica that loses finds
  the table there and goes on, and SQLite's 'database is locked' is tried again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..._errors import StoreError
from .dialects import EPOCH
from .ops import SessionOps
from .runs import Op, Plan, Program, Rest, Run, one
from .schema import upgrade

# Creating the table races other processes doing the same; SQLite can answer 'database
# is locked' at once (switching to WAL, or a schema change seen mid-read), so retry.
CREATE_ATTEMPTS = 6


def create_backoff(attempt: int) -> float:
    """Seconds to wait before creating the table again, after ``attempt`` failed."""
    return float(0.02 * 2**attempt * (0.5 + random.random()))  # noqa: S311 - jitter only


@dataclass(slots=True)
class Batch:
    """What a sweep batch did: the rows it deleted, where the next batch resumes (None:
    from the start), and the ``(key, owner)`` of the owned rows it deleted, when asked."""

    deleted: int
    resume: datetime | None
    owned: list[tuple[str, str]] = field(default_factory=list)


class UpkeepOps:
    """The upkeep's statements and operations, for the table and dialect of ``ops``."""

    def __init__(self, ops: SessionOps) -> None:
        self.table = table = ops.table
        self.dialect = dialect = ops.dialect
        c = table.c
        self._count = (
            sa.select(sa.func.count()).select_from(table).where(ops.not_marker)  # no retired ids
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

    # -- operations --------------------------------------------------------------------------

    def count(self) -> Op[int]:
        return int((yield Run(one(self._count, {}), writes=False, bulk=True)).scalar_one())

    def count_expired(self, now: datetime) -> Op[int]:
        run = Run(one(self._count_expired, {"now": now}), writes=False, bulk=True)
        return int((yield run).scalar_one())

    def oldest_created(self, now: datetime) -> Op[datetime | None]:
        found: datetime | None = (
            yield Run(one(self._oldest, {"now": now}), writes=False, bulk=True)
        ).scalar()
        return found

    def table_bytes(self) -> Op[int | None]:
        if self._size is None:
            return None
        size = (yield Run(one(self._size, {}), writes=False, bulk=True)).scalar()
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
            bulk=self.dialect.sweep_budget is None,  # a paced batch is short by its pace
        )
        return batch

    def checkpoint(self) -> Op[int | None]:
        """The dialect's checkpoint after sweep batches (``SQLDialect.after_sweep``),
        outside the writers' turn: the pages the write-ahead log held when it ran (None:
        no log, or it does not say)."""
        result = yield Run(self._checkpoint_plan(), writes=False, bulk=True)
        return self.dialect.read_checkpoint(result)

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

    def _batch_plan(self, params: dict[str, Any], after: datetime | None) -> Plan[Batch]:
        result = yield self._sweep_batch, params
        return Batch(*self.dialect.read_batch(result, after))

    def _checkpoint_plan(self) -> Plan[Any]:
        """Each of the dialect's checkpoint statements; the last one's result."""
        result: Any = None
        for text in self.dialect.after_sweep:
            result = yield from one(sa.text(text), {})
        return result

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
