"""A store that fails: real faults (a cut connection, a terminated backend, a killed
client), never a mock. Requests that do not use the session are unaffected; one that
needs it gets a 503 (or, if configured, an empty unsaved session); no 200 loses a write."""

from __future__ import annotations

import gc
import logging
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import httpx
import psycopg
import pytest
import redis
import redis.asyncio
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lazysession import SessionMiddleware, Store, StoreError
from lazysession.stores import RedisStore, SQLAlchemyStore
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.conftest import require_server
from tests.helpers import ROUTES, SECRET, Clock, client, lifespan
from tests.reliability.faults import Opened, asgi_app, wsgi_client
from tests.reliability.proxy import Proxy, proxy_to
from tests.stores.backends import POSTGRES, REDIS, server_reachable, with_driver
from tests.wsgi.apps import app as wsgi_app

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
        engine = direct.check_async()
        assert engine is not None
        async with engine.begin() as conn:
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


def kill_redis_clients(name: str) -> None:
    """Kill the connections named ``name`` (this test's own: the server is shared with
    whatever else runs on this machine)."""
    admin = redis.Redis.from_url(REDIS)
    try:
        ours = [client["id"] for client in admin.client_list() if client.get("name") == name]
        assert ours, "the store holds no connection to kill"
        for client_id in ours:
            admin.client_kill_filter(_id=client_id)
    finally:
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
    name = f"lazysession-test-{uuid.uuid4().hex[:12]}"
    client = redis.asyncio.Redis.from_url(REDIS, client_name=name)
    store = RedisStore(client, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:")
    try:
        status, stored = await run_with_fault(store, lambda: kill_redis_clients(name))
    finally:
        await dispose(store)
        await client.aclose()
    assert (status, stored) in ((200, {"user": "bob"}), (503, {"user": "ada"}))


# -- after an outage: dead pooled connections are replaced, the sweep logs StoreErrors ------

SQL_THROUGH_PROXY = ["postgresql+asyncpg", "postgresql+psycopg", "mysql+asyncmy", "mysql+aiomysql"]


@pytest.mark.parametrize("kind", [*SQL_THROUGH_PROXY, "redis"])
async def test_the_first_request_after_an_outage_succeeds(kind: str, opened: Opened) -> None:
    proxy = opened.proxy(kind)
    async with client(asgi_app(opened.store(kind, proxy.port))) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.down()  # every pooled connection dies while idle
        proxy.up()
        response = await http.get("/read")
    assert (response.status_code, response.json()) == (200, {"user": "ada"})


@pytest.mark.parametrize("shell", ["wsgi", "flask"])
@pytest.mark.parametrize("kind", ["postgresql+psycopg", "mysql+pymysql", "redis"])
def test_the_first_request_after_an_outage_succeeds_under_wsgi(
    kind: str, shell: str, opened_blocking: Opened
) -> None:
    proxy = opened_blocking.proxy(kind)
    http = wsgi_client(opened_blocking.store(kind, proxy.port), shell)
    assert http.get("/write?user=ada").status_code == 200
    proxy.down()
    proxy.up()
    response = http.get("/read")
    assert (response.status_code, response.json) == (200, {"user": "ada"})


def sweep_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("lazysession sweep")]


def assert_swept_through_the_outage(
    records: list[logging.LogRecord], restored: int, warned: list[warnings.WarningMessage]
) -> None:
    """Every failure during the outage was logged as a StoreError; the first sweep after
    the store came back deleted the expired session; no connection was left to the
    garbage collector."""
    failed = [r for r in records[:restored] if "failed" in r.getMessage()]
    assert failed, "no sweep ran during the outage"
    logged = [r.args[0] if isinstance(r.args, tuple) and r.args else None for r in failed]
    assert all(isinstance(error, StoreError) for error in logged), logged
    after = [r.getMessage() for r in records[restored:]]
    assert after and "deleted 1 expired" in after[0], after
    gc.collect()
    noted = [str(w.message) for w in warned] + [r.getMessage() for r in records]
    assert not [text for text in noted if "garbage collector" in text]


async def wait_for(caplog: pytest.LogCaptureFixture, text: str, after: int = 0) -> int:
    with anyio.fail_after(20):
        while not any(text in r.getMessage() for r in sweep_records(caplog)[after:]):
            await anyio.sleep(0.02)
    return len(sweep_records(caplog))


@pytest.mark.parametrize("kind", SQL_THROUGH_PROXY)
async def test_a_sweep_through_an_outage_logs_store_errors_and_resumes_at_once(
    kind: str, opened: Opened, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    clock = Clock()
    proxy = opened.proxy(kind)
    store = opened.store(kind, proxy.port, clock=clock)
    await store.save("a" * 64, {"old": True}, expires_at=clock() + timedelta(seconds=1))
    await store.save("b" * 64, {"live": True}, expires_at=clock() + timedelta(hours=1))
    clock.advance(5)
    caplog.set_level(logging.INFO, logger="lazysession")
    async with lifespan(asgi_app(store, sweep_interval=0.2, clock=clock)):
        proxy.down()
        await wait_for(caplog, "failed")
        proxy.up()
        restored = len(sweep_records(caplog))
        await wait_for(caplog, "deleted", restored)
    assert_swept_through_the_outage(sweep_records(caplog), restored, recwarn.list)


def test_a_blocking_sweep_through_an_outage_logs_store_errors_and_resumes_at_once(
    opened_blocking: Opened, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    clock = Clock()
    proxy = opened_blocking.proxy("mysql+pymysql")
    store = opened_blocking.store("mysql+pymysql", proxy.port, clock=clock)
    store.sync.save("a" * 64, {"old": True}, expires_at=clock() + timedelta(seconds=1))
    clock.advance(5)
    caplog.set_level(logging.INFO, logger="lazysession")
    middleware = WSGISessionMiddleware(
        wsgi_app, SECRET, store=store, sweep_interval=0.2, clock=clock
    )
    proxy.down()
    middleware.start_sweeper()
    try:
        anyio.run(wait_for, caplog, "failed")
        proxy.up()
        restored = len(sweep_records(caplog))
        anyio.run(wait_for, caplog, "deleted", restored)
    finally:
        middleware.close()
    assert_swept_through_the_outage(sweep_records(caplog), restored, recwarn.list)
