"""A store serves whichever event loop calls it, and closes what it opened when the app's
lifespan ends.

``TestClient(app)`` without ``with`` runs each request in an event loop of its own (as
Starlette's own tests do); a server runs one loop per worker. Connections belong to the
loop that opened them, so a store keeps them per loop, and closes a loop's connections
when that loop ends or when the app's lifespan shuts down.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

with warnings.catch_warnings():  # the test client's own notice about its HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from starlette.testclient import TestClient

from lazysession import SQLAlchemyStore, Store
from lazysession.stores import RedisStore
from tests.reliability.faults import ASYNC_KINDS, Opened, asgi_app, opened_sync, timed_sync
from tests.stores.backends import POSTGRES, REDIS

SQLITE_KINDS = ["sqlite+aiosqlite", "sqlite+aiosqlite/memory"]


@pytest.fixture
def opened() -> Iterator[Opened]:
    with opened_sync() as opened:
        yield opened


def open_store(kind: str, opened: Opened, tmp_path: Path, **options: Any) -> Store:
    if not kind.startswith("sqlite"):
        return opened.store(kind, opened.proxy(kind).port, **options)
    if kind == "sqlite+aiosqlite":
        store = SQLAlchemyStore(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", **options)
    else:
        store = SQLAlchemyStore("sqlite+aiosqlite://", **options)
    opened.stores.append((kind, store))  # closed with the others
    return store


SCENARIO_BOUND = 20.0
"""Seconds a whole scenario may take: a store stuck on another loop's connection hangs."""


@pytest.mark.parametrize("kind", [*ASYNC_KINDS, *SQLITE_KINDS])
def test_a_store_works_from_any_event_loop(kind: str, opened: Opened, tmp_path: Path) -> None:
    http = TestClient(asgi_app(open_store(kind, opened, tmp_path)))  # a loop per request

    def requests() -> Any:
        statuses = [http.get("/write", params={"n": str(n)}).status_code for n in range(3)]
        return statuses, http.get("/read").json()

    assert timed_sync(requests, SCENARIO_BOUND)[0] == ([200, 200, 200], {"n": "2"})


@pytest.mark.parametrize("kind", [*ASYNC_KINDS, *SQLITE_KINDS])
def test_a_store_works_again_after_a_lifespan_closed_it(
    kind: str, opened: Opened, tmp_path: Path
) -> None:
    app = asgi_app(open_store(kind, opened, tmp_path))

    def lifespans() -> list[Any]:
        seen = []
        for n in range(2):
            with TestClient(app) as http:
                seen.append(http.get("/write", params={"n": str(n)}).status_code)
                seen.append(http.get("/read").json())
        return seen

    assert timed_sync(lifespans, SCENARIO_BOUND)[0] == [200, {"n": "0"}, 200, {"n": "1"}]


def postgresql_backends(application_name: str) -> int:
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def redis_clients(name: str) -> int:
    admin = redis.Redis.from_url(REDIS)
    try:
        return sum(1 for entry in admin.client_list() if entry.get("name") == name)
    finally:
        admin.close()


CLOSE_SEEN = 2.0
"""Seconds a server may take to see a closed connection go (through the proxy, whose
upstream side closes once it reads the client's end)."""


def settled(count: Callable[[], int]) -> int:
    """``count()`` once it reads 0, or as it reads after ``CLOSE_SEEN`` seconds."""
    deadline = time.monotonic() + CLOSE_SEEN
    while (found := count()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def test_lifespan_shutdown_closes_the_postgresql_connections_the_store_opened(
    opened: Opened,
) -> None:
    name = f"lazysession-{uuid.uuid4().hex[:8]}"
    settings = {"connect_args": {"server_settings": {"application_name": name}}}
    store = opened.store(
        "postgresql+asyncpg", opened.proxy("postgresql").port, engine_options=settings
    )
    with TestClient(asgi_app(store)) as http:
        assert http.get("/write", params={"user": "ada"}).status_code == 200
        assert postgresql_backends(name) >= 1
    assert settled(lambda: postgresql_backends(name)) == 0
    assert TestClient(asgi_app(store)).get("/read").status_code == 200  # and it reopens


def test_lifespan_shutdown_closes_the_redis_connections_the_store_opened(opened: Opened) -> None:
    name = f"lazysession-{uuid.uuid4().hex[:8]}"
    proxy = opened.proxy("redis")
    store = RedisStore(
        f"redis://127.0.0.1:{proxy.port}/0?client_name={name}",
        prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:",
    )
    opened.stores.append(("redis", store))
    with TestClient(asgi_app(store)) as http:
        assert http.get("/write", params={"user": "ada"}).status_code == 200
        assert redis_clients(name) >= 1
    assert settled(lambda: redis_clients(name)) == 0


UNDER_W_ERROR = textwrap.dedent(
    """
    import gc, sys, warnings
    warnings.filterwarnings("ignore", message="Using `httpx` with")  # the test client's
    from starlette.testclient import TestClient
    from tests.reliability.faults import Opened, asgi_app, opened_sync

    kind = sys.argv[1]
    with opened_sync() as opened:
        if kind.startswith("sqlite"):
            from lazysession import SQLAlchemyStore
            store = SQLAlchemyStore("sqlite+aiosqlite:///" + sys.argv[2])
        else:
            store = opened.store(kind, opened.proxy(kind).port)
        app = asgi_app(store)
        with TestClient(app) as http:  # with its lifespan
            assert http.get("/write", params={"n": "1"}).status_code == 200
        http = TestClient(app)  # without: a loop per request
        assert http.get("/write", params={"n": "2"}).status_code == 200
        assert http.get("/read").json() == {"n": "2"}
        del app, http, store
        gc.collect()
    gc.collect()
    print("done")
    """
)


@pytest.mark.parametrize("kind", [*ASYNC_KINDS, "sqlite+aiosqlite"])
def test_no_resource_warning_under_w_error(kind: str, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", UNDER_W_ERROR, kind, str(tmp_path / "s.db")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == "done", run.stderr
    assert "Warning" not in run.stderr, run.stderr
    assert "Exception ignored" not in run.stderr, run.stderr


def test_two_event_loops_at_once_share_a_store(opened: Opened) -> None:
    store = opened.store("redis", opened.proxy("redis").port)

    async def use(n: int) -> dict[str, Any] | None:
        session_id = f"{n:064x}"
        expires = datetime.now(timezone.utc) + timedelta(minutes=5)
        await store.save(session_id, {"n": n}, expires_at=expires)
        found = await store.load(session_id)
        await store.aclose()
        return found

    def both() -> list[dict[str, Any] | None]:
        with ThreadPoolExecutor(2) as threads:
            return list(threads.map(lambda n: asyncio.run(use(n)), range(2)))

    assert timed_sync(both, SCENARIO_BOUND)[0] == [{"n": 0}, {"n": 1}]
