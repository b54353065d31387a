"""A login whose store calls reach the store but whose answers never come back (a link
that failed one way, ``Proxy.mute``): the login answers the documented 503, and the
browser is left with the session it had and a login that works when tried again (not a
cookie the store refuses). The rotation's first round trip is then the one whose answer
is lost, so the rotation never completes; an answer lost after its last statement is
not forced here."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lazysession import SessionMiddleware, Store, get_session
from tests.helpers import ROUTES, SECRET, client
from tests.reliability.faults import Opened
from tests.reliability.proxy import Proxy

pytestmark = pytest.mark.anyio

KINDS = ["postgresql+asyncpg", "mysql+asyncmy", "redis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def app_losing_the_login_answer(store: Store, proxy: Proxy) -> Starlette:
    """The usual routes, and ``/login-lost``: a login whose store calls after the load
    reach the store, and whose answers the proxy drops."""

    async def login_lost(request: Request) -> Response:
        session = get_session(request)
        dict(session)  # loaded, through the proxy still answering
        proxy.mute()
        session.regenerate()
        session["user"] = "ada"
        return PlainTextResponse("in")

    options: dict[str, Any] = {"secret_key": SECRET, "store": store, "sweep_interval": None}
    return Starlette(
        routes=[*ROUTES, Route("/login-lost", login_lost)],
        middleware=[Middleware(SessionMiddleware, **options)],
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_a_login_whose_answers_are_lost_leaves_the_session_and_a_working_retry(
    kind: str, opened: Opened
) -> None:
    proxy = opened.proxy(kind)
    store = opened.store(kind, proxy.port)
    app = app_losing_the_login_answer(store, proxy)
    async with client(app) as other:  # a login first: its scripts and statements cached
        assert (await other.get("/write", params={"cart": "0"})).status_code == 200
        assert (await other.get("/login", params={"user": "bob"})).status_code == 200
    async with client(app) as http:
        assert (await http.get("/write", params={"cart": "1"})).status_code == 200
        before = http.cookies["session"]
        lost = await http.get("/login-lost")
        proxy.up()
        held = http.cookies["session"]
        kept = await http.get("/read")
        again = await http.get("/login", params={"user": "ada"})
        after = await http.get("/read")
    assert lost.status_code == 503 and "set-cookie" not in lost.headers
    assert held == before
    assert kept.json() == {"cart": "1"}
    assert again.status_code == 200
    assert after.json() == {"cart": "1", "user": "ada"}
