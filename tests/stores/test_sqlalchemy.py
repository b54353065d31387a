"""What SQLAlchemyStore promises beyond the shared contract: its table, its DDL, the
drivers it accepts, and timestamps that mean the same instant on every dialect."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from lazysession import Changes, ConfigurationError, SessionMiddleware, StoreError
from lazysession.stores import SQLAlchemyStore
from tests.conftest import require_server
from tests.stores.backends import MYSQL, POSTGRES, server_reachable, with_driver

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+asyncmy"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    driver = request.param
    if driver.startswith("sqlite"):
        yield f"{driver}:///{tmp_path / 'sessions.db'}"
        return
    server = POSTGRES if driver.startswith("postgresql") else MYSQL
    if not server_reachable(server):
        require_server(f"no server at {server}")
    yield with_driver(server, driver)


def fresh_table() -> str:
    return f"lazysession_test_{uuid.uuid4().hex[:12]}"


async def drop(url: str, table: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    await engine.dispose()


async def stored_row(store: SQLAlchemyStore) -> Any:
    """The table's one row, read through the store's own engine."""
    engine = store.check_async()
    if engine is None:  # a SQLite file: the stdlib driver serves both sides
        with store.check_sync().connect() as conn:
            return conn.execute(sa.select(store.table)).one()
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(store.table))).one()


async def test_replicas_starting_at_once_create_the_table_once(url: str) -> None:
    table = fresh_table()
    stores = [SQLAlchemyStore(url, table_name=table) for _ in range(5)]
    try:
        async with anyio.create_task_group() as tasks:
            for store in stores:
                tasks.start_soon(store.count)
        assert [await store.count() for store in stores] == [0] * 5
    finally:
        for store in stores:
            await store.aclose()
        await drop(url, table)


async def test_timestamps_keep_their_instant_on_every_dialect(url: str) -> None:
    table = fresh_table()
    now = datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=timezone.utc)
    store = SQLAlchemyStore(url, table_name=table, clock=lambda: now)
    expires = datetime(2026, 12, 1, 3, 0, 0, 654321, tzinfo=timezone(timedelta(hours=2)))
    try:
        await store.save("a" * 64, {"a": 1}, expires_at=expires)
        row = await stored_row(store)
        assert row.expires_at == expires
        assert row.expires_at.tzinfo is not None
        assert row.created_at == row.updated_at == now
    finally:
        await store.aclose()
        await drop(url, table)


async def test_save_keeps_created_at_and_moves_updated_at(url: str) -> None:
    table = fresh_table()
    moments = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    store = SQLAlchemyStore(url, table_name=table, clock=lambda: moments[-1])
    try:
        await store.save("a" * 64, {"n": 1}, expires_at=moments[-1] + timedelta(days=1))
        moments.append(moments[-1] + timedelta(minutes=5))
        await store.save("a" * 64, {"n": 2}, expires_at=moments[-1] + timedelta(days=1))
        row = await stored_row(store)
        assert (row.created_at, row.updated_at) == (moments[0], moments[1])
    finally:
        await store.aclose()
        await drop(url, table)


def test_the_table_is_there_for_alembic() -> None:
    store = SQLAlchemyStore("sqlite+aiosqlite://")
    assert store.table.name == "lazysession_sessions"
    assert {c.name for c in store.table.columns} == {
        "session_id",
        "data",
        "created_at",
        "updated_at",
        "expires_at",
        "owner",
    }
    assert sorted(list(i.columns.keys()) for i in store.table.indexes) == [
        ["expires_at"],
        ["owner"],
    ]


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (postgresql.base.PGDialect(), "TIMESTAMP WITH TIME ZONE"),  # type: ignore[no-untyped-call]
        (mysql.base.MySQLDialect(), "DATETIME(6)"),
        (sqlite.base.SQLiteDialect(), "DATETIME"),
    ],
)
def test_ddl_is_printed_for_each_dialect(dialect: sa.Dialect, expected: str) -> None:
    ddl = SQLAlchemyStore("sqlite+aiosqlite://").ddl(dialect)
    assert "CREATE TABLE lazysession_sessions" in ddl
    assert "CREATE INDEX ix_lazysession_sessions_expires_at" in ddl
    assert "CREATE INDEX ix_lazysession_sessions_owner" in ddl
    if dialect.name == "mysql":  # compared exactly: the hex of its UTF-8, binary collation
        assert "owner VARCHAR(2040) CHARACTER SET ascii COLLATE ascii_bin" in ddl
    else:
        assert "owner VARCHAR(255)" in ddl
    assert expected in ddl


async def test_create_table_false_leaves_the_schema_alone(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", create_table=False)
    with pytest.raises(
        StoreError, match="loading a session failed: OperationalError, SQLITE_ERROR"
    ):
        await store.load("a" * 64)
    await store.aclose()


def test_a_sync_url_cannot_serve_the_asgi_middleware(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigurationError, match=r"sqlite\+aiosqlite"):
        SessionMiddleware(lambda *a: None, secret_key="s" * 32, store=store)  # type: ignore[arg-type]


def test_an_async_url_cannot_serve_the_sync_side() -> None:
    store = SQLAlchemyStore("postgresql+asyncpg://localhost/x")
    with pytest.raises(ConfigurationError, match=r"postgresql\+psycopg"):
        store.sync.load("a" * 64)


async def test_a_sqlite_file_url_serves_both_sides(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    store.sync.save("a" * 64, {"from": "wsgi"}, expires_at=expires)
    await store.save("b" * 64, {"from": "asgi"}, expires_at=expires)
    assert await store.load("a" * 64) == {"from": "wsgi"}
    assert store.sync.load("b" * 64) == {"from": "asgi"}
    await store.aclose()


def test_a_sqlite_file_store_runs_under_trio(tmp_path: Path) -> None:
    """Its calls run in worker threads through anyio, so they need no asyncio loop."""

    async def use() -> None:
        store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        now = datetime.now(timezone.utc)
        await store.save("a" * 64, {"n": 1}, expires_at=now + timedelta(hours=1))
        await store.save("b" * 64, {"n": 2}, expires_at=now - timedelta(seconds=1))
        assert await store.update("a" * 64, Changes(set={"m": 2}), expires_at=now + HOUR)
        assert await store.load("a" * 64) == {"n": 1, "m": 2}
        assert await store.sweep() == 1
        assert await store.count() == 1
        store.sync.close()

    anyio.run(use, backend="trio")


def test_an_in_memory_sqlite_url_cannot_serve_the_sync_side() -> None:
    store = SQLAlchemyStore("sqlite+aiosqlite://")
    with pytest.raises(ConfigurationError, match="sync one"):
        store.sync.load("a" * 64)


async def test_an_existing_engine_is_shared(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    store = SQLAlchemyStore(engine)
    assert store.check_async() is engine
    await store.save("a" * 64, {"a": 1}, expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    await store.aclose()  # the application's engine stays open
    async with engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(store.table))
        ).scalar() == 1
    await engine.dispose()


@pytest.mark.parametrize("name", ["bad-name", "x; DROP TABLE y", "1abc", ""])
def test_a_table_name_that_is_not_an_identifier_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="table_name"):
        SQLAlchemyStore("sqlite+aiosqlite://", table_name=name)


def test_a_bad_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="bad database URL"):
        SQLAlchemyStore("nonsense://")


async def test_an_unreachable_database_raises_a_store_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = SQLAlchemyStore(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test")
    with anyio.fail_after(30), pytest.raises(StoreError, match="loading a session failed"):
        await store.load("a" * 64)
    await store.aclose()


async def test_the_owner_column_follows_logins_and_updated_at_every_write(url: str) -> None:
    """``save`` and ``rotate`` write the owner, ``update`` and ``touch`` keep it, an ended
    session and a rotation's marker have none; each of them sets ``updated_at`` to the
    store's clock."""
    table = fresh_table()
    moments = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    store = SQLAlchemyStore(url, table_name=table, clock=lambda: moments[-1])

    async def rows() -> dict[str, tuple[str | None, datetime]]:
        engine = store.check_async()
        query = sa.select(store.table.c.session_id, store.table.c.owner, store.table.c.updated_at)
        if engine is None:
            with store.check_sync().connect() as conn:
                found = conn.execute(query).all()
        else:
            async with engine.connect() as conn:
                found = (await conn.execute(query)).all()
        return {row.session_id[:1]: (row.owner, row.updated_at) for row in found}

    def later() -> datetime:
        moments.append(moments[-1] + timedelta(minutes=1))
        return moments[-1]

    def meta(owner: str) -> dict[str, Any]:
        return {"__lazysession__": {"c": 1, "u": owner}}

    try:
        await store.save("a" * 64, {"n": 1, **meta("alice")}, expires_at=moments[0] + HOUR)
        assert (await rows())["a"] == ("alice", moments[0])
        now = later()
        assert await store.update(
            "a" * 64, Changes(set={"n": 2, **meta("bob")}), expires_at=now + HOUR
        )
        assert (await rows())["a"] == ("alice", now)
        now = later()
        assert await store.touch("a" * 64, expires_at=now + HOUR)
        assert (await rows())["a"] == ("alice", now)
        now = later()
        changes = Changes(set={"n": 3, **meta("carol")})
        assert await store.rotate("a" * 64, "b" * 64, changes, expires_at=now + HOUR)
        assert await rows() == {"a": (None, now), "b": ("carol", now)}
        now = later()
        await store.delete("b" * 64)
        assert (await rows())["b"] == (None, now)
    finally:
        await store.aclose()
        store.sync.close()
        await drop(url, table)
