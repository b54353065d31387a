"""A store that fails: real faults (a cut connection, a terminated backend, a killed
client), never a mock. Requests that do not use the session are unaffected; one that
needs it gets a 503 (or, if configured, an empty unsaved session); no 200 loses a write."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import httpx
import psycopg
import pytest
import redis
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lazysession import SessionMiddleware, Store
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.conftest import require_server
from tests.helpers import ROUTES, SECRET, Clock, client, lifespan
from tests.reliability.proxy import Proxy, proxy_to
from tests.stores.backends import POSTGRES, REDIS, server_reachable, with_driver

pytestmark = pytest.mark.anyio

PG_PORT = 5432
REDIS_PORT = 6379


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["postgresql", "redis"])
def proxy_kind(request: pytest.FixtureRequest) -> Iterator[tuple[str, Proxy]]:
    kind = str(request.param)
    server = POSTGRES if kind == "postgresql" else REDIS
    if not server_reachable(server):
        require_server(f"no {kind} server at {server}")
    with proxy_to(PG_PORT if kind == "postgresql" else REDIS_PORT) as proxy:
        yield kind, proxy


def store_through(kind: str, port: int, clock: Clock | None = None) -> Store:
    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    if kind == "redis":
        return RedisStore(
            f"redis://127.0.0.1:{port}/0",
            prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:",
            connect_timeout=2,
            socket_timeout=2,
            **options,
        )
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"
    return SQLAlchemyStore(url, table_name=f"lazysession_test_{uuid.uuid4().hex[:12]}", **options)


async def dispose(store: Store) -> None:
    if isinstance(store, SQLAlchemyStore):
        direct = SQLAlchemyStore(with_driver(POSTGRES, "postgresql+asyncpg"))
        async with direct.check_async().begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {store.table.name}"))
        await direct.aclose()
    await store.aclose()


@pytest.fixture
async def cut(proxy_kind: tuple[str, Proxy]) -> AsyncIterator[tuple[Store, Proxy]]:
    kind, proxy = proxy_kind
    store = store_through(kind, proxy.port)
    yield store, proxy
    proxy.up()
    await dispose(store)


async def read_once_back(http: httpx.AsyncClient) -> httpx.Response:
    """Read the session, allowing the pool up to three requests to notice connections
    that died with the outage."""
    for _ in range(3):
        response = await http.get("/read")
        if response.status_code == 200:
            break
    return response


def app_for(store: Store, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store, **options)],
    )


async def test_requests_that_do_not_use_the_session_are_unaffected(
    cut: tuple[Store, Proxy],
) -> None:
    store, proxy = cut
    async with client(app_for(store)) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.down()
        assert (await http.get("/untouched")).status_code == 200  # with its cookie
        http.cookies.clear()
        assert (await http.get("/untouched")).status_code == 200
        assert (await http.get("/read")).status_code == 200  # no cookie: no store call


async def test_a_request_that_needs_its_session_gets_a_503_and_a_log_line(
    cut: tuple[Store, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    store, proxy = cut
    async with client(app_for(store)) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.down()
        response = await http.get("/read")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        proxy.up()
        assert (await read_once_back(http)).json() == {"user": "ada"}
    assert any("session store failed" in r.getMessage() for r in caplog.records)


async def test_empty_mode_serves_an_empty_session_and_saves_nothing(
    cut: tuple[Store, Proxy],
) -> None:
    store, proxy = cut
    async with client(app_for(store, on_store_error="empty")) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.down()
        assert (await http.get("/read")).json() == {}
        written = await http.get("/write", params={"user": "mallory"})
        assert written.status_code == 200
        assert "set-cookie" not in written.headers
        proxy.up()
        assert (await read_once_back(http)).json() == {"user": "ada"}


def app_whose_handler_cuts_the_store(store: Store, proxy: Proxy) -> Starlette:
    """``/write-after-cut`` sets ``user`` to "bob", then cuts the store before returning."""

    async def write_after_cut(request: Request) -> Response:
        request.session["user"] = "bob"
        proxy.down()
        return PlainTextResponse("handler finished")

    return Starlette(
        routes=[*ROUTES, Route("/write-after-cut", write_after_cut)],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store)],
    )


async def test_a_write_that_fails_replaces_the_response_with_a_503(
    cut: tuple[Store, Proxy],
) -> None:
    store, proxy = cut
    async with client(app_whose_handler_cuts_the_store(store, proxy)) as http:
        await http.get("/write", params={"user": "ada"})
        response = await http.get("/write-after-cut")
        assert response.status_code == 503
        assert "handler finished" not in response.text
        proxy.up()
        assert (await read_once_back(http)).json() == {"user": "ada"}


async def test_a_new_session_whose_first_save_fails_gets_a_503_and_no_cookie(
    cut: tuple[Store, Proxy],
) -> None:
    store, proxy = cut
    async with client(app_whose_handler_cuts_the_store(store, proxy)) as http:
        response = await http.get("/write-after-cut")  # no cookie: a new session
        assert response.status_code == 503
        assert "handler finished" not in response.text
        assert "set-cookie" not in response.headers
        proxy.up()


@pytest.mark.parametrize("proxy_kind", ["postgresql"], indirect=True)  # Redis never sweeps
async def test_the_sweep_survives_an_outage_and_resumes_when_the_store_returns(
    proxy_kind: tuple[str, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    kind, proxy = proxy_kind
    clock = Clock()
    store = store_through(kind, proxy.port, clock)
    try:
        await store.save("a" * 64, {"old": True}, expires_at=clock() + timedelta(seconds=1))
        clock.advance(5)
        caplog.set_level(logging.INFO, logger="lazysession")
        proxy.down()
        async with lifespan(app_for(store, sweep_interval=0.05, clock=clock)):
            with anyio.fail_after(20):
                while not any("sweep failed" in r.getMessage() for r in caplog.records):
                    await anyio.sleep(0.02)
            proxy.up()
            with anyio.fail_after(20):
                while not any("deleted 1 expired" in r.getMessage() for r in caplog.records):
                    await anyio.sleep(0.02)
    finally:
        proxy.up()
        await dispose(store)


def terminate_backends(application_name: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )


def kill_redis_clients(prefix_owner: RedisStore) -> None:
    admin = redis.Redis.from_url(REDIS)
    admin.client_kill_filter(_type="normal", skipme=True)
    admin.close()


async def run_with_fault(store: Store, fault: Callable[[], None]) -> tuple[int, Any]:
    """Write, cause the fault inside the next writing handler, then report the status
    of that request and what the store holds afterwards."""

    async def write_after_fault(request: Request) -> Response:
        request.session["user"] = "bob"
        fault()
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[*ROUTES, Route("/write-after-fault", write_after_fault)],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store)],
    )
    async with client(app) as http:
        await http.get("/write", params={"user": "ada"})
        status = (await http.get("/write-after-fault")).status_code
        response = await read_once_back(http)
        return status, response.json() if response.status_code == 200 else None


async def test_a_terminated_postgresql_backend_never_loses_an_acknowledged_write() -> None:
    if not server_reachable(POSTGRES):
        require_server(f"no postgresql server at {POSTGRES}")
    name = f"lazysession-{uuid.uuid4().hex[:8]}"
    store = SQLAlchemyStore(
        with_driver(POSTGRES, "postgresql+asyncpg"),
        table_name=f"lazysession_test_{uuid.uuid4().hex[:12]}",
        engine_options={"connect_args": {"server_settings": {"application_name": name}}},
    )
    try:
        status, stored = await run_with_fault(store, lambda: terminate_backends(name))
    finally:
        await dispose(store)
    assert (status, stored) in ((200, {"user": "bob"}), (503, {"user": "ada"}))


async def test_a_killed_redis_connection_never_loses_an_acknowledged_write() -> None:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    store = RedisStore(REDIS, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:")
    try:
        status, stored = await run_with_fault(store, lambda: kill_redis_clients(store))
    finally:
        await dispose(store)
    assert (status, stored) in ((200, {"user": "bob"}), (503, {"user": "ada"}))
