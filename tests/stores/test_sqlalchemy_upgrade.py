"""A table made by the version before the owner index gains its ``owner`` column and
index when a store first uses it, on every dialect, however many replicas start at once;
the sessions it held read as before, owned by nobody."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from lazysession._expiry import META_KEY
from lazysession._identity import handle_of
from lazysession.stores import SQLAlchemyStore
from lazysession.stores.sql import UTCDateTime
from tests.conftest import require_server
from tests.stores.backends import MYSQL, POSTGRES, drop_table, server_reachable, with_driver

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)
REPLICAS = 6
_DRIVERS = {  # kind: (sync driver, async driver)
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgresql": ("postgresql+psycopg", "postgresql+asyncpg"),
    "mysql": ("mysql+pymysql", "mysql+asyncmy"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=list(_DRIVERS))
def old_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A table of the previous version's shape, holding one anonymous session: its sync
    URL, async URL and name."""
    kind: str = request.param
    sync_driver, async_driver = _DRIVERS[kind]
    if kind == "sqlite":
        sync_url = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        server = POSTGRES if kind == "postgresql" else MYSQL
        if not server_reachable(server):
            require_server(f"no {kind} server at {server}")
        sync_url = with_driver(server, sync_driver)
    name = f"lazysession_test_{uuid.uuid4().hex[:12]}"
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column(
            "data", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Index(f"ix_{name}_expires_at", "expires_at"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    engine = sa.create_engine(sync_url)
    now = datetime.now(timezone.utc)
    try:
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(
                table.insert().values(
                    session_id="a" * 64,
                    data='{"cart":[1]}',
                    created_at=now,
                    updated_at=now,
                    expires_at=now + HOUR,
                )
            )
        yield sync_url, with_driver(sync_url, async_driver), name
    finally:
        engine.dispose()
        drop_table(sync_url, name)


def owner_column_and_index(sync_url: str, name: str) -> tuple[list[str], list[list[str]]]:
    """The table's columns named ``owner``, and the columns of its owner index."""
    engine = sa.create_engine(sync_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            columns = [c["name"] for c in inspector.get_columns(name) if c["name"] == "owner"]
            indexes = [
                list(i["column_names"])
                for i in inspector.get_indexes(name)
                if i["name"] == f"ix_{name}_owner"
            ]
            return columns, indexes  # type: ignore[return-value]
    finally:
        engine.dispose()


def login(clock_now: datetime, owner: str) -> dict[str, object]:
    return {"user": owner, META_KEY: {"c": int(clock_now.timestamp()), "u": owner}}


async def test_an_old_table_gains_the_owner_column_and_index_on_first_use(
    old_table: tuple[str, str, str],
) -> None:
    sync_url, async_url, name = old_table
    store = SQLAlchemyStore(async_url, table_name=name)
    try:
        assert await store.load("a" * 64) == {"cart": [1]}
        assert owner_column_and_index(sync_url, name) == (["owner"], [["owner"]])
        now = datetime.now(timezone.utc)
        await store.save("b" * 64, login(now, "alice"), expires_at=now + HOUR)
        assert [i.handle for i in await store.sessions_of("alice")] == [handle_of("b" * 64)]
        assert await store.revoke_all("alice") == 1
        assert await store.load("a" * 64) == {"cart": [1]}
    finally:
        await store.aclose()
        store.sync.close()
    again = SQLAlchemyStore(sync_url, table_name=name)  # a second start finds it done
    try:
        assert again.sync.count() == 1
        assert owner_column_and_index(sync_url, name) == (["owner"], [["owner"]])
    finally:
        again.sync.close()


async def test_replicas_starting_at_once_on_an_old_table_all_upgrade_it(
    old_table: tuple[str, str, str],
) -> None:
    sync_url, async_url, name = old_table
    stores = [SQLAlchemyStore(async_url, table_name=name) for _ in range(REPLICAS)]
    try:
        counts: list[int] = []

        async def start(store: SQLAlchemyStore) -> None:
            counts.append(await store.count())

        async with anyio.create_task_group() as tasks:
            for store in stores:
                tasks.start_soon(start, store)
        assert counts == [1] * REPLICAS
    finally:
        for store in stores:
            await store.aclose()
            store.sync.close()
    assert owner_column_and_index(sync_url, name) == (["owner"], [["owner"]])


def test_blocking_replicas_starting_at_once_on_an_old_table_all_upgrade_it(
    old_table: tuple[str, str, str],
) -> None:
    sync_url, _, name = old_table
    stores = [SQLAlchemyStore(sync_url, table_name=name) for _ in range(REPLICAS)]
    results: list[object] = []
    gate = threading.Barrier(REPLICAS)

    def start(store: SQLAlchemyStore) -> None:
        gate.wait()
        try:
            results.append(store.sync.count())
        except Exception as error:  # collected for the assertion
            results.append(error)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [1] * REPLICAS
    finally:
        for store in stores:
            store.sync.close()
    assert owner_column_and_index(sync_url, name) == (["owner"], [["owner"]])
