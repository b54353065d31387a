"""The stores the shell suite runs on, each seen through a recorder that counts the calls a
shell makes, on whichever side (async or blocking) that shell uses."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from lazysession import Changes, Metrics, Store, SyncStore
from lazysession.stores import Merge, Record

STORE_KINDS = ["memory", "sqlite", "postgresql", "redis"]


class RecordedSync(SyncStore):
    """A store's blocking side, counting the calls made to it."""

    def __init__(self, inner: SyncStore, calls: Counter[str]) -> None:
        self.inner = inner
        self.calls = calls

    def read(self, session_id: str) -> Record | None:
        self.calls["load"] += 1
        return self.inner.read(session_id)

    def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        self.calls["touch"] += 1
        return self.inner.touch(session_id, expires_at=expires_at, base=base)

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self.calls["save"] += 1
        self.inner.save(session_id, data, expires_at=expires_at)

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        self.calls["update"] += 1
        return self.inner.update(session_id, changes, expires_at=expires_at)

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        self.calls["rotate"] += 1
        return self.inner.rotate(old_id, new_id, changes, expires_at=expires_at)

    def delete(self, session_id: str) -> None:
        self.calls["delete"] += 1
        self.inner.delete(session_id)

    def sweep(self) -> int:
        self.calls["sweep"] += 1
        return self.inner.sweep()

    def count(self) -> int:
        return self.inner.count()

    def close(self) -> None:
        self.inner.close()


class Recorded(Store):
    """A store that counts the calls made to it, on both sides, into one ``calls``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._sync: RecordedSync | None = None

    def check_async(self) -> object:
        check = getattr(self.inner, "check_async", None)
        return None if check is None else check()

    def check_sync(self) -> object:
        check = getattr(self.inner, "check_sync", None)
        return None if check is None else check()

    async def read(self, session_id: str) -> Record | None:
        self.calls["load"] += 1
        return await self.inner.read(session_id)

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        self.calls["touch"] += 1
        return await self.inner.touch(session_id, expires_at=expires_at, base=base)

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self.calls["save"] += 1
        await self.inner.save(session_id, data, expires_at=expires_at)

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        self.calls["update"] += 1
        return await self.inner.update(session_id, changes, expires_at=expires_at)

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        self.calls["rotate"] += 1
        return await self.inner.rotate(old_id, new_id, changes, expires_at=expires_at)

    async def delete(self, session_id: str) -> None:
        self.calls["delete"] += 1
        await self.inner.delete(session_id)

    async def sweep(self) -> int:
        self.calls["sweep"] += 1
        return await self.inner.sweep()

    async def count(self) -> int:
        return await self.inner.count()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def report_to(self, metrics: Metrics) -> None:
        self.inner.report_to(metrics)

    @property
    def sync(self) -> SyncStore:
        if self._sync is None:
            self._sync = RecordedSync(self.inner.sync, self.calls)
        return self._sync
