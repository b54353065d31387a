"""What responses carry: ``Set-Cookie`` only when the cookie must change, shared caches
kept out of anything that sent or read the session, and a refusal (409, 503) that
replaces the app's response, on every shell."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from werkzeug.test import Client

from lazysession import MemoryStore, SessionMiddleware
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from lazysession.wsgi import get_session as wsgi_session
from tests.attacks.apps import session_with, started
from tests.helpers import SECRET
from tests.reliability.race_apps import Harness
from tests.security.test_shared_caches import cookie_of, directives, get, values

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

pytestmark = pytest.mark.anyio

SHELLS = ["asgi", "wsgi", "flask"]


# -- Set-Cookie only when the cookie must change ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "with_cookie"),
    [
        ("/write", {"theme": "dark"}, True),
        ("/read", {}, True),
        ("/pop", {"key": "absent"}, True),
        ("/clear", {}, False),
        ("/pop", {"key": "cart"}, False),
        ("/read", {}, False),
    ],
    ids=[
        "write-to-the-session",
        "read-it",
        "pop-a-key-it-lacks",
        "clear-without-a-cookie",
        "pop-without-a-cookie",
        "read-without-a-cookie",
    ],
)
async def test_no_set_cookie_when_the_browsers_cookie_stays_right(
    memory_harness: Harness, path: str, params: dict[str, str], with_cookie: bool
) -> None:
    shell = memory_harness.shell()
    cookie = await session_with(shell, cart="3") if with_cookie else None
    reply = await started(shell, path, cookie, **params)
    assert not reply.sets_cookie, f"{path} sent {reply.set_cookies}"


# -- targeted cache headers (RFC 9213) -------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("field", ["CDN-Cache-Control", "Surrogate-Control"])
async def test_a_response_that_sends_the_cookie_leaves_no_targeted_cache_directive_public(
    shell: str, field: str
) -> None:
    status, headers = await targeted(shell, "/write", field, "public, max-age=600")
    assert status == 200
    assert values(headers, "Set-Cookie"), "the attack needs a response that sends the cookie"
    assert "private" in directives(headers)
    left = [value for value in values(headers, field) if "private" not in value]
    assert not left, f"{field}: {left} lets a CDN store the session cookie"


async def targeted(shell: str, path: str, field: str, value: str) -> tuple[int, list[Any]]:
    """``path`` on a fresh app of ``shell`` whose response carries ``field: value``."""
    if shell == "asgi":

        async def handler(request: Request) -> Response:
            request.session["user"] = "ada"
            return PlainTextResponse("page", headers={field: value})

        app = Starlette(
            routes=[Route(path, handler)],
            middleware=[Middleware(SessionMiddleware, secret_key=SECRET, sweep_interval=None)],
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get(path)
        return response.status_code, list(response.headers.multi_items())
    if shell == "wsgi":

        def raw(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            wsgi_session(environ)["user"] = "ada"
            start_response("200 OK", [("Content-Type", "text/plain"), (field, value)])
            return [b"page"]

        reply = Client(WSGISessionMiddleware(raw, SECRET, sweep_interval=None)).get(path)
        return reply.status_code, list(reply.headers.items())
    flask_app = flask.Flask(__name__)
    flask_app.config["SECRET_KEY"] = SECRET
    flask_app.session_interface = LazySessionInterface(sweep_interval=None)

    @flask_app.get(path)
    def view() -> flask.Response:
        flask.session["user"] = "ada"
        response = flask.make_response("page")
        response.headers[field] = value
        return response

    reply = flask_app.test_client().get(path)
    return reply.status_code, list(reply.headers.items())


# -- a refusal replaces the app's response ----------------------------------------------------


@pytest.mark.parametrize(
    "shell",
    [
        "asgi",
        "wsgi",
        "flask",
    ],
)
async def test_a_refused_write_carries_none_of_the_apps_cache_headers(shell: str) -> None:
    """A write with an id a login just rotated is refused (409); the app had marked its
    page ``public, max-age=3600``."""
    store = MemoryStore()
    old = await cookie_of(shell, store)
    status, _ = await get(shell, "/login", cookie=old, store=store)
    assert status == 200
    cc = ["public, max-age=3600"]
    status, headers = await get(shell, "/write", cc=cc, cookie=old, store=store)
    assert status == 409
    assert "public" not in directives(headers), f"the 409 is cacheable: {headers}"


# -- a session read after the headers left ----------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_body_that_reads_the_session_as_it_streams_is_kept_out_of_shared_caches(
    shell: str,
) -> None:
    store = MemoryStore()
    cookie = await cookie_of(shell, store)  # a session holding user=ada
    status, headers, body = await streamed(shell, cookie, store)
    assert (status, body) == (200, b"hello ada")
    assert "cookie" in ",".join(values(headers, "Vary")).lower(), f"no Vary: {headers}"
    assert "public" not in directives(headers)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("stream", "with_cookie", "varies"),
    [(True, True, True), (False, True, False), (True, False, False)],
    ids=["streamed-with-a-cookie", "whole-with-a-cookie", "streamed-without-a-cookie"],
)
async def test_a_body_that_never_reads_the_session_varies_only_if_it_streams_to_a_session(
    shell: str, stream: bool, with_cookie: bool, varies: bool
) -> None:
    """A streamed body could still read the session once the headers left, so a response
    to a request with a session cookie that streams is varied and private; a whole body,
    or a request without a session cookie (whose session is empty), is left alone."""
    store = MemoryStore()
    cookie = await cookie_of(shell, store) if with_cookie else "other=1"
    status, headers, body = await streamed(shell, cookie, store, stream=stream, read=False)
    assert (status, body) == (200, b"hello nobody")
    varied = "cookie" in ",".join(values(headers, "Vary")).lower()
    assert varied is varies, headers
    assert ("public" not in directives(headers)) is varies, headers


async def streamed(
    shell: str, cookie: str, store: MemoryStore, *, stream: bool = True, read: bool = True
) -> tuple[int, list[Any], bytes]:
    """A page marked ``public, max-age=60`` whose body reads the session as it streams
    (``read=False``: it never does; ``stream=False``: the whole body, read or not, is
    made before the headers leave)."""
    cc = ("Cache-Control", "public, max-age=60")
    if shell == "asgi":

        async def handler(request: Request) -> Response:
            async def body() -> AsyncIterator[bytes]:
                yield b"hello "
                yield request.session.get("user", "nobody").encode() if read else b"nobody"

            if not stream:
                return PlainTextResponse("hello nobody", headers=dict([cc]))
            return StreamingResponse(body(), headers=dict([cc]))

        middleware = Middleware(SessionMiddleware, secret_key=SECRET, store=store)
        app = Starlette(routes=[Route("/page", handler)], middleware=[middleware])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/page", headers={"cookie": cookie})
        return response.status_code, list(response.headers.multi_items()), response.content
    if shell == "wsgi":

        def raw(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            def body() -> Iterator[bytes]:
                start_response("200 OK", [("Content-Type", "text/plain"), cc])
                yield b"hello "
                yield (
                    str(wsgi_session(environ).get("user", "nobody")).encode() if read else b"nobody"
                )

            if not stream:
                start_response("200 OK", [("Content-Type", "text/plain"), cc])
                return [b"hello ", b"nobody"]
            return body()

        wrapped = WSGISessionMiddleware(raw, SECRET, store=store, sweep_interval=None)
        reply = Client(wrapped, use_cookies=False).get("/page", headers={"Cookie": cookie})
        return reply.status_code, list(reply.headers.items()), reply.data
    flask_app = flask.Flask(__name__)
    flask_app.config["SECRET_KEY"] = SECRET
    flask_app.session_interface = LazySessionInterface(store=store, sweep_interval=None)

    @flask_app.get("/page")
    def view() -> flask.Response:
        def body() -> Iterator[str]:
            yield "hello "
            yield str(flask.session.get("user", "nobody")) if read else "nobody"

        if not stream:
            return flask.Response("hello nobody", headers=[cc])
        return flask.Response(flask.stream_with_context(body()), headers=[cc])

    browser = flask_app.test_client(use_cookies=False)
    reply = browser.get("/page", headers={"Cookie": cookie})
    return reply.status_code, list(reply.headers.items()), reply.data
