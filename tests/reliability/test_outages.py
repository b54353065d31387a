"""The sweep through a store that fails (a cut connection, never a mock): each shell's
sweeper logs the failure and resumes once the store is back. What requests meet during
an outage, on every shell, is in ``tests/shells/test_outages.py``."""

from __future__ import annotations

import gc
import logging
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import flask
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware

from lazysession import SessionMiddleware, Store, StoreError
from lazysession._shell import BlockingShell
from lazysession.flask import LazySessionInterface
from lazysession.stores import RedisStore, SQLAlchemyStore
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.conftest import require_server
from tests.helpers import ROUTES, SECRET, Clock, lifespan
from tests.reliability.faults import Opened, asgi_app
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


def app_for(store: Store, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store, **options)],
    )


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


SQL_THROUGH_PROXY = ["postgresql+asyncpg", "postgresql+psycopg", "mysql+asyncmy", "mysql+aiomysql"]


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


def blocking_shell(
    shell: str, store: Store, clock: Clock
) -> tuple[Callable[[], None], BlockingShell]:
    """The WSGI middleware or Flask's interface over ``store``, sweeping every 0.2 s, and
    how to start its sweep (WSGI: ``start_sweeper()``; Flask: the first request)."""
    if shell == "wsgi":
        middleware = WSGISessionMiddleware(
            wsgi_app, SECRET, store=store, sweep_interval=0.2, clock=clock
        )
        return middleware.start_sweeper, middleware
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    interface = LazySessionInterface(store=store, sweep_interval=0.2, clock=clock)
    app.session_interface = interface
    app.get("/")(lambda: dict(flask.session))

    def first_request() -> None:
        app.test_client().get("/")

    return first_request, interface


@pytest.mark.parametrize("shell", ["wsgi", "flask"])
def test_a_blocking_sweep_through_an_outage_logs_store_errors_and_resumes_at_once(
    shell: str,
    opened_blocking: Opened,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    clock = Clock()
    proxy = opened_blocking.proxy("mysql+pymysql")
    store = opened_blocking.store("mysql+pymysql", proxy.port, clock=clock)
    store.sync.save("a" * 64, {"old": True}, expires_at=clock() + timedelta(seconds=1))
    clock.advance(5)
    caplog.set_level(logging.INFO, logger="lazysession")
    start, middleware = blocking_shell(shell, store, clock)
    proxy.down()
    start()
    try:
        anyio.run(wait_for, caplog, "failed")
        proxy.up()
        restored = len(sweep_records(caplog))
        anyio.run(wait_for, caplog, "deleted", restored)
    finally:
        middleware.close()
    assert_swept_through_the_outage(sweep_records(caplog), restored, recwarn.list)
