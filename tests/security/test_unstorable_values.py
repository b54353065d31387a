"""Values JSON cannot hold fail cleanly, naming the key, before any I/O (issue 15, item 5).

A lone surrogate, an int too long to write out, and a key that is not a ``str`` (at any
depth) each raise ``SessionNotSerializable``; nothing is written, on any store, and the
stored session stays as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lazysession import SessionMiddleware, SessionNotSerializable, Store
from tests.helpers import SECRET, RecordingStore, client
from tests.security.cookies import store_of

pytestmark = pytest.mark.anyio

HUGE = 10**5000  # past sys.get_int_max_str_digits() (4300 by default)

BAD: dict[str, tuple[Callable[[dict[Any, Any]], None], str]] = {
    "a lone surrogate in a value": (lambda s: s.update(name="\ud800"), "'name'"),
    "a lone surrogate in a key": (lambda s: s.update({"\udfff": 1}), r"'\\udfff'"),
    "a lone surrogate deep in a value": (lambda s: s.update(a=[{"b": "x\udc80"}]), "'a'"),
    "an int too long to write out": (lambda s: s.update(n=HUGE), "'n'"),
    "an int key too long to write out": (lambda s: s.update({HUGE: 1}), "int"),
    "a bool key": (lambda s: s.update({True: 1}), "True"),
    "an int key": (lambda s: s.update({1: 1}), r"\[1\]"),
    "a None key": (lambda s: s.update({None: 1}), "None"),
    "a float key": (lambda s: s.update({1.5: 1}), "1.5"),
    "an int key inside a value": (lambda s: s.update(a={"ok": {2: "x"}}), "'a'"),
    "a bool key inside a list": (lambda s: s.update(a=[1, {False: 0}]), "'a'"),
}


def app_for(store: Store | None) -> Starlette:
    async def write(request: Request) -> Response:
        request.session["user"] = "ada"
        return PlainTextResponse("ok")

    async def bad(request: Request) -> Response:
        request.session["changed"] = "yes"
        BAD[request.query_params["case"]][0](request.session)
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        return PlainTextResponse(repr(dict(request.session)))

    routes = [Route("/write", write), Route("/bad", bad), Route("/read", read)]
    options: dict[str, Any] = {"secret_key": SECRET, "store": store, "sweep_interval": None}
    return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, **options)])


@pytest.fixture(params=["memory", "sqlite", "cookie"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store | None]:
    async with store_of(request.param, tmp_path) as made:
        yield made


@pytest.mark.parametrize("case", BAD)
async def test_a_new_session_with_an_unstorable_value_raises_and_writes_nothing(
    case: str, store: Store | None
) -> None:
    async with client(app_for(store)) as http:
        with pytest.raises(SessionNotSerializable, match=BAD[case][1]):
            await http.get("/bad", params={"case": case})
    if isinstance(store, RecordingStore):
        assert store.calls == {}
    if store is not None:
        assert await store.count() == 0


@pytest.mark.parametrize("case", BAD)
async def test_a_stored_session_given_an_unstorable_value_stays_as_it_was(
    case: str, store: Store | None
) -> None:
    async with client(app_for(store)) as http:
        await http.get("/write")
        if isinstance(store, RecordingStore):
            store.calls.clear()
        with pytest.raises(SessionNotSerializable, match=BAD[case][1]):
            await http.get("/bad", params={"case": case})
        if isinstance(store, RecordingStore):
            assert store.calls == {"load": 1}
        assert (await http.get("/read")).text == "{'user': 'ada'}"
