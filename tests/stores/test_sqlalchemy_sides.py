"""Both faces of SQLAlchemyStore offer the same operations, carried out by the same code:
the blocking side sweeps with progress and at full speed, and reports statistics, like
the async side; a SQLite file is served by the stdlib driver alone."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from lazysession.stores import SQLAlchemyStore
from tests.helpers import client
from tests.reliability.faults import asgi_app
from tests.stores.test_drivers import recording

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def filled(tmp_path: Path, expired: int, live: int, batch_size: int) -> SQLAlchemyStore:
    store = SQLAlchemyStore(
        f"sqlite:///{tmp_path / 's.db'}", batch_size=batch_size, clock=lambda: NOW
    )
    for i in range(expired):
        store.sync.save(f"e{i:063d}", {"i": i}, expires_at=NOW - timedelta(seconds=1))
    for i in range(live):
        store.sync.save(f"l{i:063d}", {"i": i}, expires_at=NOW + timedelta(hours=1))
    return store


def test_the_blocking_sweep_reports_its_running_total_after_each_batch(tmp_path: Path) -> None:
    store = filled(tmp_path, expired=120, live=3, batch_size=50)
    heard: list[int] = []
    assert store.sync.sweep(on_batch=heard.append, full_speed=True) == 120
    assert heard[-1] == 120
    assert heard == sorted(heard) and len(heard) >= 3  # batches of at most 50
    assert store.sync.count() == 3
    store.sync.close()


def test_the_blocking_side_reports_the_oldest_live_session_and_the_table_size(
    tmp_path: Path,
) -> None:
    store = filled(tmp_path, expired=2, live=2, batch_size=10)
    assert store.sync.oldest_created() == NOW
    assert store.sync.count_expired() == 2
    size = store.sync.table_bytes()
    assert size is not None and size > 0
    store.sync.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_sqlite_file_named_for_aiosqlite_builds_no_aiosqlite_engine(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", clock=lambda: NOW)
    assert store.check_async() is None  # inside the event loop too
    await store.save("a" * 64, {"n": 1}, expires_at=NOW + timedelta(hours=1))
    assert await store.has_table()
    assert await store.oldest_created() == NOW
    pool = store.check_sync().pool
    assert isinstance(pool, sa.pool.QueuePool) and pool.checkedin() >= 1  # stdlib driver
    await store.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_store_made_inside_the_event_loop_resolves_no_path_there(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Starlette builds its middleware, and so may an app its store, at the first
    request: an absolute SQLite path needs no look-up, then or at any call."""
    calls: list[str] = []
    monkeypatch.setattr(os, "getcwd", recording(calls, "os.getcwd", os.getcwd))
    monkeypatch.setattr(os.path, "abspath", recording(calls, "os.path.abspath", os.path.abspath))
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", clock=lambda: NOW)
    try:
        async with client(asgi_app(store)) as http:
            assert (await http.get("/write", params={"user": "ada"})).status_code == 200
            assert (await http.get("/read")).json() == {"user": "ada"}
    finally:
        await store.aclose()
        store.sync.close()
    assert calls == []
