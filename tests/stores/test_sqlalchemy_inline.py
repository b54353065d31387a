"""A SQLite file is served on the event loop, and never makes the loop wait: while
another process holds the database's write lock, this process's other requests keep
answering, and the blocked write ends (stored, or a 503) within the store's timeout."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest
import sqlalchemy as sa

from lazysession.stores import SQLAlchemyStore
from tests.helpers import client
from tests.reliability.faults import asgi_app

pytestmark = pytest.mark.anyio

TIMEOUT = 2.0

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
print("released", flush=True)
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def write_lock_held_elsewhere(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the file's write lock (``BEGIN IMMEDIATE``) until the
    block ends (or until it is sent a line)."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdin is not None
    try:
        assert locker.stdout.readline().strip() == "locked"
        yield locker
    finally:
        if locker.poll() is None:
            locker.stdin.write("\n")
            locker.stdin.flush()
        locker.wait(10)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    path = tmp_path / "sessions.db"
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{path}", timeout=TIMEOUT)
    try:
        async with client(asgi_app(store)) as http:
            assert (await http.get("/write", params={"user": "ada"})).status_code == 200
            yield http, path
    finally:
        await store.aclose()
        store.sync.close()


async def test_other_requests_answer_while_another_process_holds_the_write_lock(
    served: tuple[httpx.AsyncClient, Path],
) -> None:
    http, path = served
    order: list[str] = []
    answered: dict[str, int] = {}

    async def write(n: int) -> None:
        response = await http.get("/write", params={"n": str(n)})
        answered[f"write {n}"] = response.status_code
        order.append("write")

    with write_lock_held_elsewhere(path) as locker:
        async with anyio.create_task_group() as tasks:
            for n in range(3):
                tasks.start_soon(write, n)
            await anyio.lowlevel.checkpoint()  # the writes start, and wait for the lock
            started = time.perf_counter()
            for _ in range(20):
                assert (await http.get("/untouched")).status_code == 200
                assert (await http.get("/read")).json()["user"] == "ada"
                order.append("answered")
            took = time.perf_counter() - started
            assert took < TIMEOUT / 2  # generous: the loop never waited out the lock
            assert order == ["answered"] * 20  # every write still waits for the lock
            assert locker.stdin is not None
            locker.stdin.write("\n")  # let the writes in
            locker.stdin.flush()
    assert answered == {"write 0": 200, "write 1": 200, "write 2": 200}
    assert (await http.get("/read")).json()["n"] in {"0", "1", "2"}


async def test_a_write_blocked_past_the_timeout_is_a_503_within_it(
    served: tuple[httpx.AsyncClient, Path],
) -> None:
    http, path = served
    with write_lock_held_elsewhere(path):
        started = time.perf_counter()
        response = await http.get("/write", params={"n": "1"})
        took = time.perf_counter() - started
        assert (await http.get("/read")).json() == {"user": "ada"}  # reads go on
    assert response.status_code == 503
    assert took < TIMEOUT * 1.5 + 0.5  # the timeout, and a write's grace at most


async def test_a_call_nothing_contends_takes_no_worker_thread(
    served: tuple[httpx.AsyncClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, _ = served
    hops: list[Any] = []
    original = anyio.to_thread.run_sync

    async def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return await original(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    assert (await http.get("/write", params={"n": "2"})).status_code == 200
    assert (await http.get("/read")).json() == {"user": "ada", "n": "2"}
    assert hops == []


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "threads"])
async def test_inline_false_runs_no_sqlite_statement_on_the_event_loop(
    tmp_path: Path, inline: bool
) -> None:
    """``inline=False`` is for tests that flag blocking calls on the event loop (as
    Starlette's own do): no statement of the store's then runs on the loop's thread."""
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", inline=inline)
    threads: list[int] = []

    def traced(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.set_trace_callback(lambda sql: threads.append(threading.get_ident()))

    sa.event.listen(store.check_sync(), "connect", traced)
    loop_thread = threading.get_ident()
    try:
        async with client(asgi_app(store)) as http:
            assert (await http.get("/write", params={"user": "ada"})).status_code == 200
            assert (await http.get("/write", params={"n": "2"})).status_code == 200
            assert (await http.get("/read")).json() == {"user": "ada", "n": "2"}
    finally:
        await store.aclose()
        store.sync.close()
    on_loop = sum(1 for thread in threads if thread == loop_thread)
    assert threads, "no statement was traced"
    if inline:
        assert on_loop > 0  # the default: served on the loop
    else:
        assert on_loop == 0, f"{on_loop} of {len(threads)} statements ran on the event loop"
