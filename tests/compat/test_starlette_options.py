"""Starlette's parameters behave as in Starlette where its own tests look (the whole of
its session test file runs in ``scripts/compat.py``; these pin what lazysession adds)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lazysession import MemoryStore
from tests.helpers import client, make_app

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("max_age", [0, -1])
@pytest.mark.parametrize("server_side", [False, True])
async def test_a_session_written_under_max_age_zero_or_less_is_dropped_by_the_browser(
    max_age: int, server_side: bool
) -> None:
    store = MemoryStore() if server_side else None
    async with client(make_app(store=store, max_age=max_age)) as http:
        response = await http.get("/write", params={"user": "ada"})
        assert response.json() == {"user": "ada"}  # the handler still had its session
        assert "; Max-Age=0; " in response.headers["set-cookie"]
        if store is not None:
            assert await store.count() == 0


async def test_max_age_as_a_timedelta_sets_the_cookies_lifetime() -> None:
    async with client(make_app(max_age=timedelta(hours=1))) as http:
        response = await http.get("/write", params={"user": "ada"})
        assert "; Max-Age=3600; " in response.headers["set-cookie"]
