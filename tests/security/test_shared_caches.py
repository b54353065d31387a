"""No shared cache may store a response that sets or read a session (issue 15, item 8).

A caching proxy that stores a response carrying ``Set-Cookie`` hands that cookie, a
credential, to the next visitor; one that stores a page built from a session hands out
that visitor's page. So, on every shell (ASGI, WSGI, Flask):

- a response that sends the session cookie (a new id, a rotation, an expired cookie, the
  cookie store's data) is made ``private`` whatever the app said: ``public`` and
  ``s-maxage`` are taken out, ``private`` goes in, the browser's own directives
  (``max-age``, ``no-cache``, ...) stay;
- a response that read the session is made ``private`` the same way, unless
  ``private_reads=False`` (then it only gets ``Vary: Cookie``, as in Django);
- ``no-store`` or ``private`` already there: the header is left as the app wrote it;
- a response that never touched the session is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import flask
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.test import Client

from lazysession import MemoryStore, SessionMiddleware, Store, get_session
from lazysession._shell import private_cache_control
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from lazysession.wsgi import get_session as wsgi_session
from tests.helpers import SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from lazysession import Session

pytestmark = pytest.mark.anyio

SHELLS = ["asgi", "wsgi", "flask"]
Headers = list[tuple[str, str]]


def act(session: Session, path: str) -> None:
    if path == "/write":
        session["user"] = "ada"
    elif path == "/read":
        session.mark_accessed()
    elif path == "/logout":
        session.invalidate()
    elif path == "/login":
        session.regenerate()
        session["user"] = "ada"


def asgi_app(**options: Any) -> Starlette:
    async def handler(request: Request) -> Response:
        if request.url.path != "/untouched":
            act(get_session(request), request.url.path)
        response = PlainTextResponse("page")
        for value in request.query_params.getlist("cc"):
            response.headers.append("Cache-Control", value)
        return response

    routes = [
        Route(path, handler) for path in ("/write", "/read", "/logout", "/login", "/untouched")
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=SECRET, sweep_interval=None, **options)]
    return Starlette(routes=routes, middleware=middleware)


def wsgi_app(**options: Any) -> WSGISessionMiddleware:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path != "/untouched":
            act(wsgi_session(environ), path)
        query = parse_qsl(environ.get("QUERY_STRING", ""))
        headers = [("Content-Type", "text/plain"), *(("Cache-Control", v) for k, v in query)]
        start_response("200 OK", headers)
        return [b"page"]

    return WSGISessionMiddleware(app, secret_key=SECRET, sweep_interval=None, **options)


def flask_app(**options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    app.session_interface = LazySessionInterface(sweep_interval=None, **options)

    @app.route("/<path:action>")
    def handler(action: str) -> flask.Response:
        if action != "untouched":
            act(flask.session, "/" + action)  # type: ignore[arg-type]  # a FlaskSession
        response = flask.make_response("page")
        for value in flask.request.args.getlist("cc"):
            response.headers.add("Cache-Control", value)
        return response

    return app


async def get(
    shell: str, path: str, *, cc: Iterable[str] = (), cookie: str | None = None, **options: Any
) -> tuple[int, Headers]:
    """One request to a fresh app of ``shell``: the status and the response headers."""
    params = [("cc", value) for value in cc]
    headers = {} if cookie is None else {"cookie": cookie}
    if shell == "asgi":
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi_app(**options)), base_url="http://testserver"
        ) as http:
            response = await http.get(path, params=tuple(params), headers=headers)
        return response.status_code, list(response.headers.multi_items())
    app = wsgi_app(**options) if shell == "wsgi" else flask_app(**options)
    reply = Client(app, use_cookies=False).get(path, query_string=params, headers=headers)
    return reply.status_code, list(reply.headers.items())


def values(headers: Headers, name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


def directives(headers: Headers) -> list[str]:
    found = values(headers, "Cache-Control")
    assert len(found) <= 1, f"one Cache-Control header at most, not {found}"
    return [d.strip().lower() for d in found[0].split(",")] if found else []


async def cookie_of(shell: str, store: Store) -> str:
    """A browser's cookie for a session held in ``store``."""
    _, headers = await get(shell, "/write", store=store)
    return values(headers, "Set-Cookie")[0].split(";", 1)[0]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- a response that sets the session cookie -------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("store", ["cookie", "memory"])
async def test_an_explicit_public_on_a_response_that_sets_the_cookie_is_made_private(
    shell: str, store: str
) -> None:
    _, headers = await get(
        shell,
        "/write",
        cc=["public, max-age=60, s-maxage=600"],
        store=None if store == "cookie" else MemoryStore(),
    )
    assert values(headers, "Set-Cookie")
    assert directives(headers) == ["max-age=60", "private"]


@pytest.mark.parametrize("shell", SHELLS)
async def test_the_cookie_stays_private_even_when_reads_may_be_public(shell: str) -> None:
    _, headers = await get(shell, "/write", cc=["public, max-age=60"], private_reads=False)
    assert values(headers, "Set-Cookie")
    assert directives(headers) == ["max-age=60", "private"]


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_response_that_sets_the_cookie_without_cache_control_gets_private(
    shell: str,
) -> None:
    _, headers = await get(shell, "/write", private_reads=False)
    assert values(headers, "Set-Cookie")
    assert directives(headers) == ["private"]


@pytest.mark.parametrize("shell", SHELLS)
async def test_no_cache_alone_does_not_keep_a_shared_cache_from_storing_the_cookie(
    shell: str,
) -> None:
    # A shared cache may store a no-cache response and, once the server revalidates it
    # for the next visitor (a 304 carries no Set-Cookie), serve it with the stored cookie.
    _, headers = await get(shell, "/write", cc=["no-cache"])
    assert directives(headers) == ["no-cache", "private"]


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_logout_and_a_login_are_made_private(shell: str) -> None:
    store = MemoryStore()
    cookie = await cookie_of(shell, store)
    for path in ("/login", "/logout"):
        _, headers = await get(shell, path, cc=["public, max-age=60"], cookie=cookie, store=store)
        assert values(headers, "Set-Cookie"), path
        assert directives(headers) == ["max-age=60", "private"], path


@pytest.mark.parametrize("shell", SHELLS)
async def test_no_store_or_private_from_the_app_is_left_as_it_is(shell: str) -> None:
    for given_value in ("no-store", "private, max-age=5", "public, no-store"):
        _, headers = await get(shell, "/write", cc=[given_value])
        assert values(headers, "Cache-Control") == [given_value]


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_private_that_names_fields_becomes_private_for_the_whole_response(
    shell: str,
) -> None:
    _, headers = await get(shell, "/write", cc=['public, private="Set-Cookie", max-age=60'])
    assert directives(headers) == ["max-age=60", "private"]


@pytest.mark.parametrize("shell", SHELLS)
async def test_several_cache_control_headers_become_one(shell: str) -> None:
    _, headers = await get(shell, "/write", cc=["public", "max-age=60"])
    assert directives(headers) == ["max-age=60", "private"]


# -- a response that read the session --------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_response_that_read_the_session_is_made_private(shell: str) -> None:
    store = MemoryStore()
    cookie = await cookie_of(shell, store)
    _, headers = await get(shell, "/read", cc=["public, max-age=60"], cookie=cookie, store=store)
    assert not values(headers, "Set-Cookie")
    assert directives(headers) == ["max-age=60", "private"]
    assert "cookie" in values(headers, "Vary")[0].lower()


@pytest.mark.parametrize("shell", SHELLS)
async def test_with_private_reads_off_a_read_keeps_the_apps_public_and_varies_by_cookie(
    shell: str,
) -> None:
    store = MemoryStore()
    cookie = await cookie_of(shell, store)
    _, headers = await get(
        shell,
        "/read",
        cc=["public, max-age=60"],
        cookie=cookie,
        store=store,
        private_reads=False,
    )
    assert values(headers, "Cache-Control") == ["public, max-age=60"]
    assert "cookie" in values(headers, "Vary")[0].lower()


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_response_that_never_touched_the_session_is_left_alone(shell: str) -> None:
    store = MemoryStore()
    cookie = await cookie_of(shell, store)
    for sent in (None, cookie):
        _, headers = await get(
            shell, "/untouched", cc=["public, max-age=60"], cookie=sent, store=store
        )
        assert values(headers, "Cache-Control") == ["public, max-age=60"]
        assert not values(headers, "Vary")


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_dropped_public_is_logged_once(
    shell: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lazysession")
    options: dict[str, Any] = {}
    if shell == "asgi":
        app: Any = asgi_app(**options)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            for _ in range(3):
                await http.get("/write", params={"cc": "public, max-age=60"})
    else:
        app = wsgi_app(**options) if shell == "wsgi" else flask_app(**options)
        for _ in range(3):
            Client(app).get("/write", query_string={"cc": "public, max-age=60"})
    warned = [r for r in caplog.records if "Cache-Control" in r.getMessage()]
    assert len(warned) == 1
    assert "public" in warned[0].getMessage()


async def test_the_option_takes_a_bool_only() -> None:
    from lazysession import ConfigurationError

    with pytest.raises(ConfigurationError, match="private_reads"):
        SessionMiddleware(asgi_app(), secret_key=SECRET, private_reads="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="private_reads"):
        LazySessionInterface(private_reads=0)  # type: ignore[arg-type]


# -- the header rule itself ------------------------------------------------------------------

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_ARGUMENT = st.one_of(
    st.integers(0, 10**6).map(str),
    st.text(alphabet='abc, =;"\\-', max_size=10).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
)
_DIRECTIVE = st.one_of(
    st.sampled_from(["public", "private", "no-store", "no-cache", "must-revalidate", "immutable"]),
    st.builds(lambda name, arg: f"{name}={arg}", _TOKEN, _ARGUMENT),
    st.builds(lambda arg: f"s-maxage={arg}", _ARGUMENT),
    st.builds(lambda arg: f"PUBLIC={arg}", _ARGUMENT),
    st.builds(lambda arg: f"Private={arg}", _ARGUMENT),
)
_HEADERS = st.lists(
    st.lists(_DIRECTIVE, max_size=5).map(lambda ds: " ,".join(ds) if ds else ""), max_size=3
)


def _split(value: str) -> list[str]:
    """Directives of a header value, commas inside quoted strings kept (the test's own,
    deliberately plain, reading)."""
    parts, current, quoted, escaped = [], "", False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def _name(directive: str) -> str:
    return directive.split("=", 1)[0].strip().lower()


@given(_HEADERS)
def test_the_rule_leaves_no_shared_cache_a_way_to_store_the_response(
    given_values: list[str],
) -> None:
    result = private_cache_control(given_values)
    before = [d for value in given_values for d in _split(value)]
    already = any(_name(d) == "no-store" or d.lower() == "private" for d in before)
    if already:
        assert result is None  # the app's header already keeps shared caches out
        return
    assert result is not None
    after = _split(result.value)
    assert after[-1] == "private"
    assert not any(_name(d) in ("public", "s-maxage") for d in after)
    assert not any(_name(d) == "private" for d in after[:-1])
    kept = [d for d in before if _name(d) not in ("public", "s-maxage", "private")]
    assert after[:-1] == kept  # every other directive, as written, in order
    assert result.dropped_public == any(_name(d) in ("public", "s-maxage") for d in before)
    assert private_cache_control([result.value]) is None  # applied once, it holds
