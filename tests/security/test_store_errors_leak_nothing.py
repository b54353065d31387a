"""A failing store leaks neither session data nor session ids (issue 15, item 6).

SQLAlchemy's error text carries the statement's parameters: the session's JSON and its
hashed id. Each test makes a real server fail under a session holding a marker (the
store's table is dropped behind its back), captures every log record of every logger at
DEBUG and every exception message, and finds neither the marker nor the id, raw or
hashed (beyond a short prefix).
"""

from __future__ import annotations

import logging
import secrets
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lazysession import RedisStore, SessionMiddleware, SQLAlchemyStore, StoreError
from lazysession._signing import store_key
from lazysession.stores._driver_errors import StoreErrors
from tests.conftest import require_server
from tests.helpers import SECRET, client
from tests.stores.backends import (
    MYSQL,
    POSTGRES,
    REDIS,
    drop_table,
    forget_keys,
    server_reachable,
    sync_driver,
    with_driver,
)

pytestmark = pytest.mark.anyio

DRIVERS = {
    "postgresql+asyncpg": (POSTGRES, "SQLSTATE 42P01"),
    "postgresql+psycopg": (POSTGRES, "SQLSTATE 42P01"),
    "mysql+asyncmy": (MYSQL, "SQLSTATE 42S02, error 1146"),
    "mysql+aiomysql": (MYSQL, "SQLSTATE 42S02, error 1146"),
}
"""Each async driver, its server, and the code its error must keep (no such table)."""

LATER = datetime.now(timezone.utc) + timedelta(days=1)

HIDDEN_PREFIX = 12
"""Characters of a hashed id that may not appear (a shorter prefix names nothing)."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg and asyncmy run on asyncio only


@dataclass
class Failing:
    """A store on a real server whose table the test can drop, and the app on it."""

    store: SQLAlchemyStore
    sync_url: str
    table: str
    app: Starlette
    marker: str

    def drop(self) -> None:
        drop_table(self.sync_url, self.table)


@pytest.fixture(params=list(DRIVERS))
async def failing(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    server, _ = DRIVERS[request.param]
    if not server_reachable(server):
        require_server(f"no server at {server}")
    url = with_driver(server, request.param)
    table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
    store = SQLAlchemyStore(url, table_name=table)
    marker = f"marker-{secrets.token_hex(8)}"
    made = Failing(store, with_driver(url, sync_driver(url)), table, Starlette(), marker)

    async def write(request: Request) -> Response:
        request.session["token"] = marker
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        return PlainTextResponse(str(len(request.session)))

    async def drop_then_write(request: Request) -> Response:
        assert request.session["token"] == marker  # loaded before the table goes
        made.drop()
        request.session["again"] = marker
        return PlainTextResponse("ok")

    made.app = Starlette(
        routes=[Route("/write", write), Route("/read", read), Route("/drop", drop_then_write)],
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET, store=store, sweep_interval=None)
        ],
    )
    try:
        yield made
    finally:
        made.drop()
        await store.aclose()


def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG, and SQLAlchemy's statement log on as ``echo=True`` turns it
    on (SQLAlchemy sets its own loggers to WARN; at its DEBUG, ``echo="debug"``, it logs
    every result row, which no setting of ours can hide: docs/security.md says so)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")


def secrets_in(cookie: str, marker: str) -> list[str]:
    session_id = cookie.split(".")[0]
    return [marker, session_id, store_key(session_id)[:HIDDEN_PREFIX]]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def assert_absent(text: str, hidden: list[str]) -> None:
    for secret in hidden:
        assert secret not in text


async def test_a_failed_load_logs_no_data_and_no_id(
    failing: Failing, caplog: pytest.LogCaptureFixture
) -> None:
    log_everything(caplog)
    async with client(failing.app) as http:
        await http.get("/write")
        cookie = http.cookies["session"]
        failing.drop()
        assert (await http.get("/read")).status_code == 503
    assert caplog.records
    assert_absent(everything_logged(caplog), secrets_in(cookie, failing.marker))


async def test_a_failed_first_write_logs_no_data_and_no_id(
    failing: Failing, caplog: pytest.LogCaptureFixture
) -> None:
    log_everything(caplog)
    async with client(failing.app) as http:
        await http.get("/write")  # the table exists now
        failing.drop()
        http.cookies.clear()
        response = await http.get("/write")
        assert response.status_code == 503
        assert "set-cookie" not in response.headers
    text = everything_logged(caplog)
    assert "saving" in text or "session store failed" in text
    assert_absent(text, [failing.marker])


async def test_a_failed_merge_logs_no_data_and_no_id(
    failing: Failing, caplog: pytest.LogCaptureFixture
) -> None:
    log_everything(caplog)
    async with client(failing.app) as http:
        await http.get("/write")
        cookie = http.cookies["session"]
        assert (await http.get("/drop")).status_code == 503
    assert_absent(everything_logged(caplog), secrets_in(cookie, failing.marker))


async def test_a_store_error_names_the_action_and_the_code_but_no_data(
    failing: Failing, request: pytest.FixtureRequest
) -> None:
    session_id = secrets.token_urlsafe(32)
    key = store_key(session_id)
    async with client(failing.app) as http:
        await http.get("/write")  # the table exists now
    failing.drop()
    with pytest.raises(StoreError) as raised:
        await failing.store.save(key, {"token": failing.marker}, expires_at=LATER)
    message = str(raised.value)
    shown = "".join(traceback.format_exception(raised.value))
    assert message.startswith("saving a session failed")
    assert DRIVERS[request.node.callspec.params["failing"]][1] in message
    assert_absent(shown, [failing.marker, key[:HIDDEN_PREFIX]])


async def test_a_redis_error_names_its_code_but_no_data() -> None:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    store = RedisStore(REDIS, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:")
    key = store_key(secrets.token_urlsafe(32))
    marker = f"marker-{secrets.token_hex(8)}"
    try:
        await store.save(key, {"token": marker}, expires_at=LATER)
        store.check_sync().set(store.prefix + key, marker)  # a string where a hash was
        with pytest.raises(StoreError) as raised:
            await store.read(key)
    finally:
        forget_keys(store)
        await store.aclose()
    assert str(raised.value) == "loading a session failed: ResponseError, WRONGTYPE"
    assert_absent("".join(traceback.format_exception(raised.value)), [marker, key[:12]])


PG_DRIVERS = [name for name in DRIVERS if name.startswith("postgresql")]


@pytest.mark.parametrize("driver", PG_DRIVERS)
async def test_a_cancelled_statement_names_what_cancelled_it(driver: str) -> None:
    """PostgreSQL cancels a statement (SQLSTATE 57014) for its statement timeout or for a
    cancel request; the StoreError tells which, so an operator can tell the server's
    timer from a client's deadline."""
    if not server_reachable(POSTGRES):
        require_server(f"no postgresql server at {POSTGRES}")
    engine = create_async_engine(with_driver(POSTGRES, driver))
    try:
        async with engine.connect() as timed, engine.connect() as other:
            pid = (await timed.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            await timed.execute(sa.text("SET statement_timeout = 50"))
            with (
                pytest.raises(StoreError) as by_timer,
                StoreErrors("sweeping", (sa.exc.DBAPIError,)),
            ):
                await timed.execute(sa.text("SELECT pg_sleep(5)"))
            await timed.rollback()
            await timed.execute(sa.text("SET statement_timeout = 0"))

            async def cancel_soon() -> None:
                while not (await other.execute(WAITING, {"pid": pid})).scalar_one():
                    await anyio.sleep(0.01)
                await other.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(cancel_soon)
                with (
                    pytest.raises(StoreError) as by_request,
                    StoreErrors("sweeping", (sa.exc.DBAPIError,)),
                ):
                    await timed.execute(sa.text("SELECT pg_sleep(5)"))
    finally:
        await engine.dispose()
    assert str(by_timer.value).endswith("SQLSTATE 57014, statement timeout"), by_timer.value
    assert str(by_request.value).endswith("SQLSTATE 57014, user request"), by_request.value


WAITING = sa.text(
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = :pid AND query LIKE '%pg_sleep%'"
    " AND state = 'active'"
)
