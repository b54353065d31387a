"""``session.created_at`` of a session the request creates, on every shell: None in the
handler (nothing is stored yet), then the instant it is stored with, once the write is
decided; the next request reads the same instant."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.test import Client

from lazysession import MemoryStore, Session, SessionMiddleware, get_session
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from lazysession.wsgi import get_session as wsgi_session
from tests.helpers import SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

pytestmark = pytest.mark.anyio

Seen = list[tuple[Session, datetime | None]]
"""Each request's session, with ``created_at`` as the handler saw it."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def act(session: Session, path: str, seen: Seen) -> None:
    seen.append((session, session.created_at))
    if path == "/write":
        session["cart"] = "3"


async def requests(shell: str, store: MemoryStore, seen: Seen) -> list[str | None]:
    """``/write`` (a new session), then ``/read`` with its cookie; the Set-Cookie of each."""
    cookies: list[str | None] = []
    if shell == "asgi":

        async def handler(request: Request) -> Response:
            act(get_session(request), request.url.path, seen)
            return PlainTextResponse("ok")

        middleware = Middleware(SessionMiddleware, secret_key=SECRET, store=store)
        routes = [Route("/write", handler), Route("/read", handler)]
        app = Starlette(routes=routes, middleware=[middleware])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            for path in ("/write", "/read"):
                header = {} if not cookies else {"cookie": str(cookies[0])}
                response = await http.get(path, headers=header)
                cookies.append(response.headers.get("set-cookie"))
        return [None if c is None else c.split(";", 1)[0] for c in cookies]
    if shell == "wsgi":

        def raw(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            act(wsgi_session(environ), environ["PATH_INFO"], seen)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        client: Any = Client(
            WSGISessionMiddleware(raw, SECRET, store=store, sweep_interval=None),
            use_cookies=False,
        )
    else:
        flask_app = flask.Flask(__name__)
        flask_app.config["SECRET_KEY"] = SECRET
        flask_app.session_interface = LazySessionInterface(store=store, sweep_interval=None)

        @flask_app.get("/write")
        @flask_app.get("/read")
        def view() -> str:
            act(flask.session._get_current_object(), flask.request.path, seen)  # type: ignore[attr-defined]
            return "ok"

        client = flask_app.test_client(use_cookies=False)
    for path in ("/write", "/read"):
        header = {} if not cookies else {"Cookie": str(cookies[0])}
        cookies.append(client.get(path, headers=header).headers.get("Set-Cookie"))
    return [None if c is None else c.split(";", 1)[0] for c in cookies]


@pytest.mark.parametrize("shell", ["asgi", "wsgi", "flask"])
async def test_a_new_session_reports_the_instant_it_is_stored_with(shell: str) -> None:
    store, seen = MemoryStore(), Seen()
    before = time.time()
    cookie, _ = await requests(shell, store, seen)
    after = time.time()
    assert cookie is not None
    (created, in_handler), (read, read_in_handler) = seen
    assert in_handler is None, "nothing is stored while the handler runs"
    assert created.created_at is not None
    stamp = created.created_at.timestamp()
    assert int(before) <= stamp <= after
    assert read_in_handler == created.created_at, "the next request reads the same instant"
    assert read.created_at == created.created_at


def test_a_regenerated_session_reports_its_new_creation_once_the_write_is_decided() -> None:
    session = Session({"cart": "3"})
    session.meta_for_write(1000.0)  # what the core does when it decides a write
    assert session.created_at is not None and session.created_at.timestamp() == 1000
    session.regenerate()
    session.meta_for_write(2000.5)  # a new creation, kept to the whole second
    assert session.created_at is not None and session.created_at.timestamp() == 2000
