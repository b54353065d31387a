"""No lost writes: concurrent requests on one session each keep their change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from lazysession import Store
from tests.helpers import client, make_app
from tests.stores.backends import isolated_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made, cleanup = isolated_store(request.param, tmp_path, sync=False)
    yield made
    cleanup()
    await made.aclose()


async def test_fifty_concurrent_requests_each_keep_their_own_key(store: Store) -> None:
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"start": "yes"})
        cookie = {"cookie": f"session={http.cookies['session']}"}

        async def set_key(i: int) -> None:
            response = await http.get("/write", params={f"k{i}": str(i)}, headers=cookie)
            assert response.status_code == 200

        async with anyio.create_task_group() as tasks:
            for i in range(50):
                tasks.start_soon(set_key, i)
        final = (await http.get("/read", headers=cookie)).json()
    assert final == {"start": "yes", **{f"k{i}": str(i) for i in range(50)}}
    assert await store.count() == 1


async def test_a_slow_reader_never_writes_back_its_stale_copy(store: Store) -> None:
    async with client(make_app(store=store)) as http:
        await http.get("/write", params={"n": "1"})
        cookie = {"cookie": f"session={http.cookies['session']}"}
        seen: list[object] = []

        async def slow() -> None:
            seen.append((await http.get("/slow-read", headers=cookie)).json())

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(slow)
            await anyio.sleep(0.05)  # the slow request has loaded n=1 by now
            await http.get("/write", params={"n": "2"}, headers=cookie)
        assert seen == [{"n": "1"}]
        assert (await http.get("/read", headers=cookie)).json() == {"n": "2"}
