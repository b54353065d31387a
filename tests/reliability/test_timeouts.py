"""A store that hangs costs a request at most the store's ``timeout``: a database or cache
that accepts connections but never answers, a lock held elsewhere, a pool with no free
connection. Past the bound the request gets the documented 503 (a route that never uses
the session answers normally), and the store is usable again as soon as the fault ends.

Faults are real: a proxy that swallows traffic, locks taken by another connection, another
process holding SQLite's write lock. Every test is bounded: it fails, rather than hangs,
when an answer takes longer than twice the timeout.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from lazysession import SQLAlchemyStore, Store
from tests.helpers import client
from tests.reliability.faults import (
    ASYNC_KINDS,
    BOUND,
    SQL_ASYNC_KINDS,
    SYNC_KINDS,
    TIMEOUT,
    NoAnswer,
    Opened,
    asgi_app,
    sync_url,
    timed,
    timed_sync,
    wsgi_client,
)
from tests.stores.backends import SyncAsAsync

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the async SQL and Redis drivers run on asyncio only


async def logged_in(http: httpx.AsyncClient) -> None:
    assert (await http.get("/write", params={"user": "ada"})).status_code == 200


# -- a store that accepts connections and never answers ----------------------------------


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_a_store_that_never_answers_gets_a_503_within_the_timeout(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    async with client(asgi_app(opened.store(kind, proxy.port))) as http:
        await logged_in(http)
        proxy.black_hole()
        response, _ = await timed(lambda: http.get("/read"))
    assert response.status_code == 503


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_a_route_that_never_uses_the_session_answers_while_the_store_hangs(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    async with client(asgi_app(opened.store(kind, proxy.port))) as http:
        await logged_in(http)
        proxy.black_hole()
        response, _ = await timed(lambda: http.get("/untouched"))  # with its cookie
    assert (response.status_code, response.text) == (200, "ok")


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_a_first_save_to_a_store_that_never_answers_gets_a_503_within_the_timeout(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    async with client(asgi_app(opened.store(kind, proxy.port))) as http:
        await logged_in(http)  # the pool holds a connection that is about to hang
        http.cookies.clear()
        proxy.black_hole()
        response, _ = await timed(lambda: http.get("/write", params={"user": "bob"}))
    assert response.status_code == 503
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_requests_waiting_for_the_only_connection_answer_within_the_timeout(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    one = {"max_connections": 1} if kind == "redis" else {"engine_options": one_connection()}
    async with client(asgi_app(opened.store(kind, proxy.port, **one))) as http:
        await logged_in(http)
        proxy.black_hole()
        statuses: list[int | str] = []

        async def read() -> None:
            try:
                response, _ = await timed(lambda: http.get("/read"))
                statuses.append(response.status_code)
            except NoAnswer as late:
                statuses.append(str(late))

        async with anyio.create_task_group() as requests:
            for _ in range(3):
                requests.start_soon(read)
    assert statuses == [503, 503, 503]


def one_connection() -> dict[str, Any]:
    return {"pool_size": 1, "max_overflow": 0}


@pytest.mark.parametrize("shell", ["wsgi", "flask"])
@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_a_store_that_never_answers_gets_a_503_within_the_timeout_under_wsgi(
    kind: str, shell: str, opened_blocking: Opened
) -> None:
    proxy = opened_blocking.proxy(kind)
    http = wsgi_client(opened_blocking.store(kind, proxy.port), shell)
    assert http.get("/write?user=ada").status_code == 200
    proxy.black_hole()
    response, _ = timed_sync(lambda: http.get("/read"))
    assert response.status_code == 503


@pytest.mark.parametrize("shell", ["wsgi", "flask"])
@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_a_route_that_never_uses_the_session_answers_while_the_store_hangs_under_wsgi(
    kind: str, shell: str, opened_blocking: Opened
) -> None:
    proxy = opened_blocking.proxy(kind)
    http = wsgi_client(opened_blocking.store(kind, proxy.port), shell)
    assert http.get("/write?user=ada").status_code == 200
    proxy.black_hole()
    response, _ = timed_sync(lambda: http.get("/untouched"))
    assert (response.status_code, response.text) == (200, "ok")


# -- a lock held by another connection -----------------------------------------------------


@pytest.mark.parametrize("kind", [*SQL_ASYNC_KINDS, "mysql+pymysql"])
async def test_a_row_lock_held_elsewhere_ends_in_a_503_within_the_timeout(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    store = opened.store(kind, proxy.port)
    async with client(asgi_app(as_async(store, kind))) as http:
        await logged_in(http)
        with holding(f"SELECT * FROM {table(store)} FOR UPDATE", kind):
            response, _ = await timed(lambda: http.get("/write", params={"n": "1"}))
        assert response.status_code == 503
        # the lock is gone: the very next write goes through, on the store's connections
        assert (await http.get("/write", params={"n": "2"})).json() == {"user": "ada", "n": "2"}


@pytest.mark.parametrize("kind", ["postgresql+asyncpg", "postgresql+psycopg"])
async def test_a_table_lock_held_elsewhere_ends_in_a_503_within_the_timeout(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    store = opened.store(kind, proxy.port)
    async with client(asgi_app(store)) as http:
        await logged_in(http)
        with holding(f"LOCK TABLE {table(store)} IN ACCESS EXCLUSIVE MODE", kind):
            response, _ = await timed(lambda: http.get("/read"))
        assert response.status_code == 503
        assert (await http.get("/read")).json() == {"user": "ada"}


def table(store: Store) -> str:
    assert isinstance(store, SQLAlchemyStore)
    return store.table.name


def as_async(store: Store, kind: str) -> Store:
    """The store for the ASGI middleware; a sync driver's runs in worker threads."""
    return SyncAsAsync(store.sync) if kind == "mysql+pymysql" else store


@contextmanager
def holding(statement: str, kind: str) -> Iterator[None]:
    """Hold the lock ``statement`` takes, in a transaction of another connection."""
    engine = sa.create_engine(sync_url(kind))
    try:
        with engine.connect() as connection:
            connection.begin()
            connection.execute(sa.text(statement))
            try:
                yield
            finally:
                connection.rollback()
    finally:
        engine.dispose()


# -- SQLite: writers waiting behind another process's write lock -------------------------

HOLD_THE_WRITE_LOCK = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.read()
    """
)


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another process holds the database's write lock for the block."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "locked"
        yield
    finally:
        process.stdin.close()
        process.wait(10)


WRITERS = 4


async def test_every_writer_waiting_behind_another_process_answers_within_the_timeout(
    tmp_path: Path,
) -> None:
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", timeout=TIMEOUT)
    try:
        async with client(asgi_app(store)) as http:
            await logged_in(http)
            http.cookies.clear()
            answers: list[int | str] = []

            async def write(n: int) -> None:
                try:
                    response, _ = await timed(lambda: http.get("/write", params={"n": str(n)}))
                    answers.append(response.status_code)
                except NoAnswer as late:
                    answers.append(str(late))

            with write_locked(tmp_path / "s.db"):
                async with anyio.create_task_group() as writers:
                    for n in range(WRITERS):
                        writers.start_soon(write, n)
            assert answers == [503] * WRITERS
            assert (await http.get("/write", params={"n": "after"})).status_code == 200
    finally:
        await store.aclose()
        store.sync.close()


def test_every_writer_waiting_behind_another_process_answers_within_the_timeout_under_wsgi(
    tmp_path: Path,
) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 's.db'}", timeout=TIMEOUT)
    writers: list[threading.Thread] = []
    try:
        assert wsgi_client(store, "wsgi").get("/write?user=ada").status_code == 200
        statuses: list[int] = []

        def write(n: int) -> None:
            statuses.append(wsgi_client(store, "wsgi").get(f"/write?n={n}").status_code)

        with write_locked(tmp_path / "s.db"):
            writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
            started = time.perf_counter()
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join(max(0.0, started + BOUND - time.perf_counter()))
            answered = sum(not writer.is_alive() for writer in writers)
        assert answered == WRITERS, f"{WRITERS - answered} writers still waiting after {BOUND} s"
        assert statuses == [503] * WRITERS
        assert wsgi_client(store, "wsgi").get("/write?n=after").status_code == 200
    finally:
        for writer in writers:
            writer.join(30)  # the lock is gone: the last ones finish
        store.sync.close()
