"""The owner index of the SQL store: listing, revoking and revoking all of an owner's
sessions, each written once, free of I/O (run by the executors as ``ops``' are).

Rules:
- The index is the ``owner`` column (and its index): set by ``save`` and ``rotate``,
  cleared when a session ends (its row becomes a marker), gone with the row when the
  sweep deletes it. A listed session is live: not expired, not a marker, whatever the
  sweep has done.
- ``sessions_of`` is one statement; ``last_seen`` is the row's ``updated_at``.
- ``revoke`` finds the owner's session by its handle (a one-way hash of the key, so the
  owner's keys are read and hashed here) and ends it with ``delete``'s own operation.
- ``revoke_all`` ends the owner's live sessions in one statement (the kept one's key
  found first, if any), so each row it ends is ended atomically against the writes that
  race it: a merge, a touch or a rotation of an ended row finds the marker and writes
  nothing; a rotation's new row created before the statement is ended by it, one created
  after it lives and is listed. It counts the live sessions it ended. (Unlike ``delete``
  it does not end the ids the sessions were rotated from: those are retired by their
  rotation, or live on with only what they held before the login, owned by nobody, or,
  for a login again, owned by this owner and ended with the rest.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..._identity import SessionInfo, handle_of
from .._base import RETIRED_MEMORY, most_recent_first, session_info
from .ops import SessionOps
from .runs import Op, Plan, Run, one

_MEMORY = timedelta(seconds=RETIRED_MEMORY)
_NO_KEY = ""
"""A key no session has (``revoke_all`` keeping none)."""


class OwnerOps:
    """The owner index's statements and operations, for the table of ``ops``."""

    def __init__(self, ops: SessionOps) -> None:
        self.ops = ops
        c = ops.table.c
        owned = sa.and_(
            c.owner == sa.bindparam("owner"), c.expires_at > sa.bindparam("now"), ops.not_marker
        )
        self._listed = sa.select(c.session_id, c.data, c.expires_at, c.updated_at).where(owned)
        self._keys = sa.select(c.session_id).where(owned)
        self._end_all = (
            sa.update(ops.table)
            .where(owned, c.session_id != sa.bindparam("keep"))
            .values(ops.ended_values)
        )

    def sessions_of(self, owner: str, now: datetime) -> Op[list[SessionInfo]]:
        found: list[SessionInfo] = yield Run(self._list_plan(owner, now), writes=False)
        return found

    def revoke(self, owner: str, handle: str, now: datetime) -> Op[bool]:
        key = yield from self._key_of(owner, handle, now)
        if key is None:
            return False
        yield from self.ops.delete(key, now)
        return True

    def revoke_all(self, owner: str, keep: str | None, now: datetime) -> Op[int]:
        kept = _NO_KEY
        if keep is not None:
            kept = (yield from self._key_of(owner, keep, now)) or _NO_KEY
        params = {"owner": owner, "now": now, "until": now + _MEMORY, "keep": kept}
        ended = yield Run(one(self._end_all, params), bulk=True)
        return int(ended.rowcount)

    # -- plans -----------------------------------------------------------------------------

    def _key_of(self, owner: str, handle: str, now: datetime) -> Op[str | None]:
        """The key of the owner's live session named by ``handle``, if any."""
        result = yield Run(one(self._keys, {"owner": owner, "now": now}), writes=False)
        for row in result.all():
            if handle_of(row.session_id) == handle:
                key: str = row.session_id
                return key
        return None

    def _list_plan(self, owner: str, now: datetime) -> Plan[list[SessionInfo]]:
        result: Any = yield self._listed, {"owner": owner, "now": now}
        return most_recent_first(
            [session_info(r.session_id, r.data, r.expires_at, r.updated_at) for r in result.all()]
        )
