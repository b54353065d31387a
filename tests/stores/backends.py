"""The store back ends the contract suite runs on, each isolated in its own table or prefix.

Servers default to this machine's; ``LAZYSESSION_TEST_POSTGRES``, ``LAZYSESSION_TEST_MYSQL``
and ``LAZYSESSION_TEST_REDIS`` point elsewhere. Without a server the case skips with one
line; with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa

from lazysession import Changes, MemoryStore, Store, SyncStore
from lazysession._identity import SessionInfo
from lazysession.stores import Merge, Record, RedisStore, SQLAlchemyStore
from tests.conftest import require_server
from tests.helpers import Clock

POSTGRES = os.environ.get("LAZYSESSION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL = os.environ.get("LAZYSESSION_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
REDIS = os.environ.get("LAZYSESSION_TEST_REDIS", "redis://127.0.0.1:6379/0")

SERVERS = {"postgresql": POSTGRES, "mysql": MYSQL}


def server_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def with_driver(url: str, driver: str) -> str:
    return driver + url[url.index("://") :]


class SyncAsAsync(Store):
    """Runs a store's sync side in a worker thread, so the async contract suite runs
    unchanged against it."""

    def __init__(self, sync: SyncStore) -> None:
        self._s = sync

    async def read(self, session_id: str) -> Record | None:
        return await anyio.to_thread.run_sync(self._s.read, session_id)

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        return await anyio.to_thread.run_sync(
            lambda: self._s.touch(session_id, expires_at=expires_at, base=base)
        )

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        await anyio.to_thread.run_sync(
            lambda: self._s.save(session_id, data, expires_at=expires_at)
        )

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return await anyio.to_thread.run_sync(
            lambda: self._s.update(session_id, changes, expires_at=expires_at)
        )

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        return await anyio.to_thread.run_sync(
            lambda: self._s.rotate(old_id, new_id, changes, expires_at=expires_at)
        )

    async def delete(self, session_id: str) -> None:
        await anyio.to_thread.run_sync(self._s.delete, session_id)

    async def claim(self, ended_id: str, new_id: str) -> bool:
        return await anyio.to_thread.run_sync(self._s.claim, ended_id, new_id)

    async def sweep(self, **options: Any) -> int:
        return await anyio.to_thread.run_sync(lambda: self._s.sweep(**options))

    async def count(self) -> int:
        return await anyio.to_thread.run_sync(self._s.count)

    async def sessions_of(self, owner: str) -> list[SessionInfo]:
        return await anyio.to_thread.run_sync(self._s.sessions_of, owner)

    async def revoke(self, owner: str, handle: str) -> bool:
        return await anyio.to_thread.run_sync(self._s.revoke, owner, handle)

    async def revoke_all(self, owner: str, *, keep: str | None = None) -> int:
        return await anyio.to_thread.run_sync(lambda: self._s.revoke_all(owner, keep=keep))

    @property
    def sync(self) -> SyncStore:
        return self._s


@dataclass
class StoreCase:
    """One back end: how to open a store on it (twice, as two processes would)."""

    name: str
    open: Callable[[Clock, int], Store]
    cleanup: Callable[[], Awaitable[None]]
    native_expiry: bool = False
    """The server deletes expired sessions itself, so ``sweep`` finds nothing to do."""


async def _nothing() -> None:
    return None


Factory = Callable[[Path, pytest.FixtureRequest], StoreCase]


def memory_case(sync: bool) -> Factory:
    def make(tmp_path: Path, request: pytest.FixtureRequest) -> StoreCase:
        shared: dict[str, MemoryStore] = {}

        def open_store(clock: Clock, batch_size: int) -> Store:
            store = shared.setdefault("store", MemoryStore(clock=clock))
            return SyncAsAsync(store.sync) if sync else store

        return StoreCase("memory" + ("-sync" if sync else ""), open_store, _nothing)

    return make


def sql_case(driver: str, server: str | None, sync: bool) -> Factory:
    def make(tmp_path: Path, request: pytest.FixtureRequest) -> StoreCase:
        if server is None:
            url = f"{driver}:///{tmp_path / 'sessions.db'}"
        else:
            if not server_reachable(SERVERS[server]):
                require_server(f"no {server} server at {SERVERS[server]}")
            url = with_driver(SERVERS[server], driver)
        table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
        opened: list[SQLAlchemyStore] = []

        def open_store(clock: Clock, batch_size: int) -> Store:
            store = SQLAlchemyStore(url, table_name=table, clock=clock, batch_size=batch_size)
            opened.append(store)
            return SyncAsAsync(store.sync) if sync else store

        async def cleanup() -> None:
            drop_table(url if sync else with_driver(url, sync_driver(url)), table)
            for store in opened:
                await store.aclose()
                store.sync.close()

        return StoreCase(driver, open_store, cleanup)

    return make


def drop_table(sync_url: str, table: str) -> None:
    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    finally:
        engine.dispose()


def forget_keys(store: RedisStore) -> None:
    """Delete every key under the store's prefix, then close its sync client."""
    client = store.check_sync()
    for key in list(client.scan_iter(match=store._ops.pattern())):
        client.delete(key)
    store.sync.close()


def sync_driver(url: str) -> str:
    scheme = url.split("://")[0]
    return {
        "sqlite+aiosqlite": "sqlite",
        "postgresql+asyncpg": "postgresql+psycopg",
        "postgresql+psycopg": "postgresql+psycopg",
        "mysql+asyncmy": "mysql+pymysql",
        "mysql+aiomysql": "mysql+pymysql",
    }.get(scheme, scheme)


def redis_case(sync: bool, cluster: bool = False, callable_prefix: bool = False) -> Factory:
    def make(tmp_path: Path, request: pytest.FixtureRequest) -> StoreCase:
        if cluster:
            url = request.getfixturevalue("redis_cluster_url")
        else:
            if not server_reachable(REDIS):
                require_server(f"no redis server at {REDIS}")
            url = REDIS
        tag = uuid.uuid4().hex[:12]
        prefix: str | Callable[[str], str] = f"lazysession-test:{tag}:"
        if callable_prefix:  # as starsessions takes it: the whole key, made around the id

            def prefix(key: str) -> str:
                return f"{{lazysession-test}}:{tag}:{key}:end"

        opened: list[RedisStore] = []

        def open_store(clock: Clock, batch_size: int) -> Store:
            store = RedisStore(url, prefix=prefix, clock=clock, cluster=cluster)
            opened.append(store)
            return SyncAsAsync(store.sync) if sync else store

        async def cleanup() -> None:
            forget_keys(RedisStore(url, prefix=prefix, cluster=cluster))
            for store in opened:
                await store.aclose()

        name = (
            "redis-cluster" if cluster else "redis-callable-prefix" if callable_prefix else "redis"
        )
        return StoreCase(name, open_store, cleanup, native_expiry=True)

    return make


CASES: dict[str, Factory] = {
    "memory": memory_case(sync=False),
    "sqlite+aiosqlite": sql_case("sqlite+aiosqlite", None, sync=False),
    "postgresql+asyncpg": sql_case("postgresql+asyncpg", "postgresql", sync=False),
    "postgresql+psycopg": sql_case("postgresql+psycopg", "postgresql", sync=False),
    "mysql+asyncmy": sql_case("mysql+asyncmy", "mysql", sync=False),
    "mysql+aiomysql": sql_case("mysql+aiomysql", "mysql", sync=False),
    "memory/sync": memory_case(sync=True),
    "sqlite/sync": sql_case("sqlite", None, sync=True),
    "postgresql+psycopg/sync": sql_case("postgresql+psycopg", "postgresql", sync=True),
    "mysql+pymysql/sync": sql_case("mysql+pymysql", "mysql", sync=True),
    "redis": redis_case(sync=False),
    "redis/sync": redis_case(sync=True),
    "redis-cluster": redis_case(sync=False, cluster=True),
    "redis-cluster/sync": redis_case(sync=True, cluster=True),
    "redis-callable-prefix": redis_case(sync=False, callable_prefix=True),
}

NATIVE_EXPIRY = {
    "redis",
    "redis/sync",
    "redis-cluster",
    "redis-cluster/sync",
    "redis-callable-prefix",
}


SQL_DRIVERS = {  # kind: (sync driver, async driver)
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgresql": ("postgresql+psycopg", "postgresql+asyncpg"),
    "mysql": ("mysql+pymysql", "mysql+asyncmy"),
}


def isolated_store(kind: str, tmp_path: Path, *, sync: bool) -> tuple[Store, Callable[[], None]]:
    """A store of ``kind`` (memory, sqlite, postgresql, mysql, redis) for one test, under its
    own table or prefix, with drivers for its sync or async side; and a blocking clean-up
    that removes what the test left (an async store still needs ``await store.aclose()``)."""
    if kind == "memory":
        return MemoryStore(), lambda: None
    if kind == "redis":
        if not server_reachable(REDIS):
            require_server(f"no redis server at {REDIS}")
        prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
        redis_store = RedisStore(REDIS, prefix=prefix)
        return redis_store, lambda: forget_keys(redis_store)
    table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
    sync_driver, async_driver = SQL_DRIVERS[kind]
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        if not server_reachable(SERVERS[kind]):
            require_server(f"no {kind} server at {SERVERS[kind]}")
        url = with_driver(SERVERS[kind], sync_driver)
    store_url = url if sync else with_driver(url, async_driver)
    sql_store = SQLAlchemyStore(store_url, table_name=table)

    def clean_up() -> None:
        drop_table(url, table)
        sql_store.sync.close()

    return sql_store, clean_up
