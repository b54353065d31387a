"""A SQLite file served on the event loop does not checkpoint its WAL there at SQLite's
threshold: that checkpoint runs inside the commit that crosses it (about 4 MB copied
while every request of the process waits); the store checkpoints from a thread of its
own instead, every so many writes, so that the WAL still stays small. The loop's
connection keeps a higher threshold of its own, for a checkpoint thread that falls
behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from lazysession._expiry import utc_now
from lazysession.stores import SQLAlchemyStore
from lazysession.stores.sql import inline

pytestmark = pytest.mark.anyio

AUTOCHECKPOINT_BYTES = 1000 * 4096
"""Where SQLite's own checkpoint would have restarted the WAL (1,000 pages of 4 KiB)."""
WRITES = 3000
"""Writes of ``VALUE``: without a checkpoint, they fill about 20 times that."""
BOUNDED = 3 * AUTOCHECKPOINT_BYTES
"""The WAL's bound with a checkpoint every ``inline.CHECKPOINT_EVERY`` writes."""
BACKSTOP_BYTES = (inline.LOOP_AUTOCHECKPOINT + 100) * 4096
"""The WAL's bound without them: the loop connection's own threshold, and a commit."""
VALUE = "x" * 2000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def wal(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db-wal"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLAlchemyStore]:
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
    try:
        yield store
    finally:
        await store.aclose()
        store.sync.close()


async def largest_wal_while_writing(store: SQLAlchemyStore, wal: Path) -> int:
    """Make ``WRITES`` writes; the largest the WAL file was after any of them."""
    later = utc_now() + timedelta(hours=1)
    largest = 0
    for _ in range(WRITES):
        await store.save(secrets.token_hex(32), {"v": VALUE}, expires_at=later)
        largest = max(largest, os.path.getsize(wal))  # noqa: ASYNC240 - one stat, measured
    return largest


async def test_writes_on_the_event_loop_never_checkpoint_the_wal_there(
    store: SQLAlchemyStore, wal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "CHECKPOINT_EVERY", 10**9)  # no checkpoint from a thread
    largest = await largest_wal_while_writing(store, wal)
    # A checkpoint on the loop's connection at SQLite's threshold would have let the next
    # write restart the WAL from its start: it would never have grown past it.
    assert 2 * AUTOCHECKPOINT_BYTES < largest <= BACKSTOP_BYTES


class AtOnce:
    """A stand-in for ``threading.Thread`` that runs its target when started, so the
    checkpoint's effect on the WAL does not depend on how fast a thread gets the CPU."""

    def __init__(self, target: Callable[[], None], **_: object) -> None:
        self.target = target

    def start(self) -> None:
        self.target()

    def is_alive(self) -> bool:
        return False


async def test_the_wal_checkpointed_every_so_many_writes_starts_over_and_stays_small(
    store: SQLAlchemyStore, wal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "CheckpointThread", AtOnce)
    assert await largest_wal_while_writing(store, wal) <= BOUNDED
