"""A SQLite file served on the event loop never checkpoints its WAL there: SQLite's own
checkpoint runs inside the commit that crosses its threshold (about 4 MB copied while
every request of the process waits); the store checkpoints from a thread of its own
instead, every so many writes, so that the WAL still stays small."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
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
"""The WAL's bound with checkpoints from a thread: they lag the writes a little."""
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
    # A checkpoint on the loop's connection would have let the next write restart the
    # WAL from its start: it would never have grown past SQLite's threshold.
    assert largest > 2 * BOUNDED


async def test_the_wal_is_checkpointed_from_a_thread_and_stays_small(
    store: SQLAlchemyStore, wal: Path
) -> None:
    assert await largest_wal_while_writing(store, wal) <= BOUNDED
