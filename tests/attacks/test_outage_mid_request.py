"""The store goes away after a request loaded its session and before it saves: between
the load and the write, or between the load and a login's rotation, on every networked
store and every shell. The README: "A write that fails replaces the response with a 503
before any header has left", with ``Retry-After``, and nothing is saved."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from lazysession import Store
from tests.attacks.apps import Held, session_with
from tests.attacks.test_lost_replies import DRIVERS
from tests.reliability.faults import Opened, asgi_app, wsgi_client
from tests.reliability.proxy import Proxy
from tests.reliability.race_apps import Reply, Shell, make_shell

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["redis", "postgresql"])  # MariaDB: see test_lost_replies
async def proxied(
    request: pytest.FixtureRequest, shell_kind: str
) -> AsyncIterator[tuple[Shell, Proxy]]:
    kind = str(request.param)
    opened = Opened()
    proxy = opened.proxy(kind)
    side = "async" if shell_kind == "asgi" else "sync"
    store: Store = opened.store(DRIVERS[(kind, side)], proxy.port, timeout=2.0)
    try:
        yield make_shell(shell_kind, store), proxy
    finally:
        await opened.close()


async def read_back(shell: Shell, cookie: str) -> Reply:
    """The session once the store is back (a pool may take a request or two to notice
    the connections the outage killed)."""
    for _ in range(3):
        reply = await shell.get("/read", cookie)
        if reply.status == 200:
            break
    return reply


@pytest.mark.parametrize(
    ("path", "params"), [("/write", {"theme": "dark"}), ("/login", {})], ids=["write", "login"]
)
async def test_a_store_lost_between_load_and_save_gives_a_503_and_saves_nothing(
    proxied: tuple[Shell, Proxy], path: str, params: dict[str, str]
) -> None:
    shell, proxy = proxied
    cookie = await session_with(shell, cart="3")
    async with anyio.create_task_group() as tasks:
        held = await Held(tasks, shell, "held").send(path, cookie, **params)
        proxy.down()
        answer = await held.finish()
    assert answer.status == 503
    assert not answer.sets_cookie
    proxy.up()
    after = await read_back(shell, cookie)
    assert after.status == 200
    assert after.data() == {"cart": "3"}


@pytest.mark.parametrize(
    "shell",
    [
        "asgi",
        "wsgi",
        "flask",
    ],
)
async def test_a_session_that_cannot_be_loaded_gets_a_503_with_retry_after(shell: str) -> None:
    opened = Opened()
    try:
        proxy = opened.proxy("redis")
        if shell == "asgi":
            store = opened.store("redis", proxy.port)
            transport = httpx.ASGITransport(app=asgi_app(store))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                await http.get("/write", params={"cart": "3"})
                proxy.down()
                response = await http.get("/read")
            status, headers = response.status_code, dict(response.headers)
        else:
            browser = wsgi_client(opened.store("redis", proxy.port), shell)
            browser.get("/write?cart=3")
            proxy.down()
            reply = browser.get("/read")
            status, headers = reply.status_code, {k.lower(): v for k, v in reply.headers.items()}
        assert status == 503
        assert "retry-after" in headers, f"a 503 without Retry-After: {headers}"
    finally:
        await opened.close()
