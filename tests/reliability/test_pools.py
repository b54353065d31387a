"""A burst of requests larger than the Redis pool waits for connections instead of failing.

redis-py's default asyncio pool refuses a command past its size; the store's pool is a
blocking one of ``max_connections`` (100 by default): past it a call waits for a free
connection, within the store's ``timeout``. The link is slowed by a proxy, so the
requests really are in flight at once.
"""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest

from tests.helpers import client
from tests.reliability.faults import Opened, asgi_app, wsgi_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def burst(http: httpx.AsyncClient, requests: int) -> list[int]:
    statuses: list[int] = []

    async def read() -> None:
        statuses.append((await http.get("/read")).status_code)

    async with anyio.create_task_group() as tasks:
        for _ in range(requests):
            tasks.start_soon(read)
    return statuses


async def test_150_concurrent_requests_over_a_slow_link_all_succeed(opened: Opened) -> None:
    proxy = opened.proxy("redis")
    store = opened.store("redis", proxy.port, timeout=5.0)
    async with client(asgi_app(store)) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.slow(0.3)
        with anyio.fail_after(20):
            statuses = await burst(http, 150)
    assert statuses == [200] * 150


async def test_a_burst_waits_for_the_pools_connections_and_opens_no_more(opened: Opened) -> None:
    proxy = opened.proxy("redis")
    store = opened.store("redis", proxy.port, timeout=5.0, max_connections=5)
    async with client(asgi_app(store)) as http:
        await http.get("/write", params={"user": "ada"})
        proxy.slow(0.05)
        with anyio.fail_after(20):
            statuses = await burst(http, 30)
    assert statuses == [200] * 30
    assert proxy.connections <= 5


def test_blocking_requests_wait_for_the_pools_connections_and_open_no_more(
    opened_blocking: Opened,
) -> None:
    proxy = opened_blocking.proxy("redis")
    store = opened_blocking.store("redis", proxy.port, timeout=5.0, max_connections=3)
    http = wsgi_client(store, "wsgi")
    assert http.get("/write?user=ada").status_code == 200
    cookie = http.get_cookie("session")
    assert cookie is not None
    proxy.slow(0.05)
    statuses: list[int] = []

    def read() -> None:
        reader = wsgi_client(store, "wsgi")
        reader.set_cookie("session", cookie.value)
        statuses.append(reader.get("/read").status_code)

    readers = [threading.Thread(target=read) for _ in range(12)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(20)
    assert statuses == [200] * 12
    assert proxy.connections <= 3
