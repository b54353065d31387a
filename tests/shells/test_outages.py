"""A store that fails, on every shell: real faults (a cut connection, a store that never
answers, a terminated backend, a killed client) through a TCP proxy, never a mock.
Requests that do not use the session are unaffected; one that needs it gets the
documented 503 with ``Retry-After`` (or, if configured, an empty unsaved session); no 200
loses a write. ASGI reaches the stores through their async drivers, WSGI and Flask
through their blocking ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
import redis

from lazysession import Store
from lazysession.stores import RedisStore
from tests.conftest import require_server
from tests.reliability.faults import BOUND, TIMEOUT, Opened, timed
from tests.shells.apps import Answer, Hook, ShellClient, build
from tests.stores.backends import POSTGRES, REDIS, server_reachable

pytestmark = pytest.mark.anyio

SHELL_CASES = ["asgi", "wsgi", "flask"]  # the async drivers run on asyncio only
SERVERS = ["postgresql", "redis"]
DRIVERS = {  # server: (the ASGI shell's driver, the blocking shells')
    "postgresql": ("postgresql+asyncpg", "postgresql+psycopg"),
    "redis": ("redis", "redis"),
}
AFTER_AN_OUTAGE = {  # every driver that goes through the proxy, by side
    "asgi": [
        "postgresql+asyncpg",
        "postgresql+psycopg",
        "mysql+asyncmy",
        "mysql+aiomysql",
        "redis",
    ],
    "blocking": ["postgresql+psycopg", "mysql+pymysql", "redis"],
}


def driver_of(shell: str, server: str) -> str:
    return DRIVERS[server][0 if shell == "asgi" else 1]


@pytest.fixture
async def opened() -> AsyncIterator[Opened]:
    opened = Opened()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Cut:
    """A store of ``server`` reached through a proxy, and the app of a shell over it."""

    def __init__(self, shell: str, server: str, opened: Opened) -> None:
        self.shell = shell
        self.driver = driver_of(shell, server)
        self.proxy = opened.proxy(self.driver)
        self.store = opened.store(self.driver, self.proxy.port)

    def client(self, hook: Hook | None = None, **options: Any) -> ShellClient:
        hook = hook if hook is not None else self.proxy.down
        return ShellClient(self.shell, build(self.shell, self.store, hook, **options))


@pytest.fixture
async def cut(shell: str, server: str, opened: Opened) -> AsyncIterator[Cut]:
    made = Cut(shell, server, opened)
    yield made
    made.proxy.up()


async def read_once_back(http: ShellClient) -> Answer:
    """Read the session, allowing the pool up to three requests to notice connections
    that died with the outage."""
    for _ in range(3):
        response = await http.get("/read")
        if response.status_code == 200:
            break
    return response


def assert_unavailable(response: Answer) -> None:
    """The documented 503: ``Retry-After``, and none of the app's response."""
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "handler finished" not in response.text


# -- a store that is down ------------------------------------------------------------------


async def test_requests_that_do_not_use_the_session_are_unaffected(cut: Cut) -> None:
    http = cut.client()
    await http.get("/write", {"user": "ada"})
    cut.proxy.down()
    assert (await http.get("/untouched")).status_code == 200  # with its cookie
    http.cookies.clear()
    assert (await http.get("/untouched")).status_code == 200
    assert (await http.get("/read")).status_code == 200  # no cookie: no store call


async def test_a_request_that_needs_its_session_gets_a_503_and_a_log_line(
    cut: Cut, caplog: pytest.LogCaptureFixture
) -> None:
    http = cut.client()
    await http.get("/write", {"user": "ada"})
    cut.proxy.down()
    assert_unavailable(await http.get("/read"))
    cut.proxy.up()
    assert (await read_once_back(http)).json() == {"user": "ada"}
    assert any("session store failed" in r.getMessage() for r in caplog.records)


async def test_empty_mode_serves_an_empty_session_and_saves_nothing(cut: Cut) -> None:
    http = cut.client(on_store_error="empty")
    await http.get("/write", {"user": "ada"})
    cut.proxy.down()
    assert (await http.get("/read")).json() == {}
    written = await http.get("/write", {"user": "mallory"})
    assert written.status_code == 200
    assert "set-cookie" not in written.headers
    cut.proxy.up()
    assert (await read_once_back(http)).json() == {"user": "ada"}


async def test_a_write_that_fails_replaces_the_response_with_a_503(cut: Cut) -> None:
    http = cut.client()  # /hook writes, then cuts the store before returning
    await http.get("/write", {"user": "ada"})
    assert_unavailable(await http.get("/hook"))
    cut.proxy.up()
    assert (await read_once_back(http)).json() == {"user": "ada"}


async def test_a_new_session_whose_first_save_fails_gets_a_503_and_no_cookie(cut: Cut) -> None:
    response = await cut.client().get("/hook")  # no cookie: a new session
    assert_unavailable(response)
    assert "set-cookie" not in response.headers


# -- a store that never answers ------------------------------------------------------------


async def test_a_store_that_never_answers_gets_the_documented_503_within_the_timeout(
    cut: Cut,
) -> None:
    http = cut.client()
    assert (await http.get("/write", {"user": "ada"})).status_code == 200
    cut.proxy.black_hole()
    response, took = await timed(lambda: http.get("/read"), BOUND)
    assert_unavailable(response)
    assert took >= TIMEOUT / 2  # it waited for the store, then gave up


async def test_a_first_save_to_a_store_that_never_answers_gets_a_503_and_no_cookie(
    cut: Cut,
) -> None:
    http = cut.client()
    assert (await http.get("/write", {"user": "ada"})).status_code == 200
    http.cookies.clear()
    cut.proxy.black_hole()
    response, _ = await timed(lambda: http.get("/write", {"user": "bob"}), BOUND)
    assert_unavailable(response)
    assert "set-cookie" not in response.headers


# -- faults inside a writing handler: no acknowledged write is lost -----------------------


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


async def run_with_fault(shell: str, store: Store, fault: Callable[[], None]) -> tuple[int, Any]:
    """Write, cause the fault inside the next writing handler (``/hook``: user=bob), then
    report the status of that request and what the store holds afterwards."""
    http = ShellClient(shell, build(shell, store, fault))
    try:
        await http.get("/write", {"user": "ada"})
        status = (await http.get("/hook")).status_code
        response = await read_once_back(http)
        return status, response.json() if response.status_code == 200 else None
    finally:
        await http.aclose()


def named_store(shell: str, server: str, name: str, opened: Opened) -> Store:
    """A store of ``server`` on ``shell``'s side whose connections carry ``name``."""
    driver = driver_of(shell, server)
    if server == "redis":
        prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
        store = RedisStore(f"{REDIS}?client_name={name}", prefix=prefix, timeout=TIMEOUT)
        opened.stores.append((driver, store))
        return store
    if driver == "postgresql+asyncpg":
        connect: dict[str, Any] = {"server_settings": {"application_name": name}}
    else:
        connect = {"application_name": name}
    return opened.store(driver, 5432, engine_options={"connect_args": connect})


async def test_a_terminated_postgresql_backend_never_loses_an_acknowledged_write(
    shell: str, opened: Opened
) -> None:
    if not server_reachable(POSTGRES):
        require_server(f"no postgresql server at {POSTGRES}")
    name = f"lazysession-{uuid.uuid4().hex[:8]}"
    store = named_store(shell, "postgresql", name, opened)
    status, stored = await run_with_fault(shell, store, lambda: terminate_backends(name))
    assert (status, stored) in ((200, {"user": "bob"}), (503, {"user": "ada"}))


async def test_a_killed_redis_connection_never_loses_an_acknowledged_write(
    shell: str, opened: Opened
) -> None:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    name = f"lazysession-test-{uuid.uuid4().hex[:12]}"
    store = named_store(shell, "redis", name, opened)
    status, stored = await run_with_fault(shell, store, lambda: kill_redis_clients(name))
    assert (status, stored) in ((200, {"user": "bob"}), (503, {"user": "ada"}))


# -- after an outage: dead pooled connections are replaced ---------------------------------


def after_an_outage() -> list[tuple[str, str]]:
    cases = [("asgi", driver) for driver in AFTER_AN_OUTAGE["asgi"]]
    for shell in ("wsgi", "flask"):
        cases += [(shell, driver) for driver in AFTER_AN_OUTAGE["blocking"]]
    return cases


@pytest.mark.parametrize(("shell_case", "driver"), after_an_outage())
async def test_the_first_request_after_an_outage_succeeds(
    shell: str, driver: str, opened: Opened
) -> None:
    proxy = opened.proxy(driver)
    http = ShellClient(shell, build(shell, opened.store(driver, proxy.port)))
    try:
        assert (await http.get("/write", {"user": "ada"})).status_code == 200
        proxy.down()  # every pooled connection dies while idle
        proxy.up()
        response = await http.get("/read")
    finally:
        await http.aclose()
    assert (response.status_code, response.json()) == (200, {"user": "ada"})
