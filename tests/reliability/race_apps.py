"""One app on each shell (ASGI, WSGI, Flask) over one store, with hold points, and one
async driver for all three, so a race test is written once and forced the same way
everywhere.

Rules:
- A request with ``hold=<name>`` stops at the start of its handler, after the shell has
  loaded its session, and tells the test it got there; it goes on only when the test
  opens that gate. So "A loaded, then B finished, then A wrote" is certain, never timed:
  ASGI handlers wait on ``anyio.Event``; WSGI and Flask handlers, served in threads,
  on ``threading.Event``. A gate left shut fails the request after ``GATE_SECONDS``
  instead of hanging the suite.
- Every handler does what its path says (``ACTIONS``) to the session, the same code on
  every shell, and answers JSON.
- The driver sends no cookie but the one the test names, and keeps none: the test plays
  the browser, and decides which cookie each request carries.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
import flask
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from werkzeug.test import Client

from lazysession import CookieStore, SessionMiddleware, Store, get_session
from lazysession._signing import IdSigner, SecretKeys
from lazysession.flask import LazySessionInterface
from lazysession.stores import Record
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from lazysession.wsgi import get_session as wsgi_session
from tests.helpers import SECRET
from tests.stores.backends import isolated_store

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from lazysession import Session

GATE_SECONDS = 20.0
STORES = ["memory", "sqlite", "postgresql", "mysql", "redis"]
SHELLS = ["asgi", "wsgi", "flask"]
COOKIE = "session"


# -- what each path does to the session, on every shell ----------------------------------

NUMBERS: dict[str, Any] = {"big_float": 1e20, "near_int": 1.7e16, "neg_zero": -0.0, "huge": 2**70}


def _write(session: Session, args: dict[str, str]) -> None:
    for key, value in args.items():
        session[key] = value


def _pop(session: Session, args: dict[str, str]) -> None:
    session.pop(args["key"], None)


def _clear_write(session: Session, args: dict[str, str]) -> None:
    session.clear()
    _write(session, args)


def _clear(session: Session, args: dict[str, str]) -> None:
    session.clear()


def _logout(session: Session, args: dict[str, str]) -> None:
    session.invalidate()


def _login(session: Session, args: dict[str, str]) -> None:
    session.regenerate()
    session["user"] = args.get("user", "ada")


def _read(session: Session, args: dict[str, str]) -> None:
    session.mark_accessed()


def _fill(session: Session, args: dict[str, str]) -> None:
    session[args["key"]] = "x" * int(args["size"])


def _numbers(session: Session, args: dict[str, str]) -> None:
    session.update(NUMBERS)


ACTIONS: dict[str, Callable[[Session, dict[str, str]], None]] = {
    "write": _write,
    "pop": _pop,
    "clear-write": _clear_write,
    "clear": _clear,
    "logout": _logout,
    "login": _login,
    "read": _read,
    "fill": _fill,
    "numbers": _numbers,
}


def act(session: Session, path: str, args: dict[str, str]) -> dict[str, Any]:
    """Do what ``path`` says; the answer is the session as the handler left it, each value
    with the name of its type and its ``repr`` (so a float that came back as an int, or
    ``-0.0`` as ``0.0``, shows). Flask's ``_permanent`` is left out."""
    ACTIONS[path.strip("/")](session, args)
    return {
        key: [type(value).__name__, repr(value)]
        for key, value in session.items()
        if key != "_permanent"
    }


# -- hold points ---------------------------------------------------------------------------


class Gates(Protocol):
    async def reached(self, name: str) -> None:
        """Wait until a request stopped at ``name``."""

    def open(self, name: str) -> None:
        """Let the request waiting at ``name`` go on (or one that is yet to get there)."""


class AsyncGates:
    """Hold points for handlers on the test's own event loop (ASGI)."""

    def __init__(self) -> None:
        self._reached: dict[str, anyio.Event] = {}
        self._opened: dict[str, anyio.Event] = {}

    def _pair(self, name: str) -> tuple[anyio.Event, anyio.Event]:
        if name not in self._reached:
            self._reached[name], self._opened[name] = anyio.Event(), anyio.Event()
        return self._reached[name], self._opened[name]

    async def hold(self, name: str) -> None:
        reached, opened = self._pair(name)
        reached.set()
        with anyio.fail_after(GATE_SECONDS):
            await opened.wait()

    async def reached(self, name: str) -> None:
        with anyio.fail_after(GATE_SECONDS):
            await self._pair(name)[0].wait()

    def open(self, name: str) -> None:
        self._pair(name)[1].set()


class ThreadGates:
    """Hold points for handlers served in threads (WSGI, Flask)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reached: dict[str, threading.Event] = {}
        self._opened: dict[str, threading.Event] = {}
        self._waits = anyio.CapacityLimiter(8)  # the test's own waits, apart from requests

    def _pair(self, name: str) -> tuple[threading.Event, threading.Event]:
        with self._lock:
            if name not in self._reached:
                self._reached[name], self._opened[name] = threading.Event(), threading.Event()
            return self._reached[name], self._opened[name]

    def hold(self, name: str) -> None:
        reached, opened = self._pair(name)
        reached.set()
        if not opened.wait(GATE_SECONDS):
            raise TimeoutError(f"gate {name!r} was never opened")

    async def reached(self, name: str) -> None:
        event = self._pair(name)[0]
        if not await anyio.to_thread.run_sync(event.wait, GATE_SECONDS, limiter=self._waits):
            raise TimeoutError(f"no request reached gate {name!r}")

    def open(self, name: str) -> None:
        self._pair(name)[1].set()


# -- the three apps ------------------------------------------------------------------------


def _args(pairs: Iterable[tuple[str, str]]) -> tuple[str | None, dict[str, str]]:
    """The gate to hold at, and the action's arguments (``permanent`` is Flask's alone)."""
    args = dict(pairs)
    args.pop("permanent", None)
    return args.pop("hold", None), args


def asgi_app(gates: AsyncGates, **options: Any) -> Starlette:
    async def handler(request: Request) -> Response:
        hold, args = _args(request.query_params.items())
        if hold:
            await gates.hold(hold)
        return JSONResponse(act(get_session(request), request.url.path, args))

    routes = [Route(f"/{name}", handler) for name in ACTIONS]
    middleware = [Middleware(SessionMiddleware, secret_key=SECRET, **options)]
    return Starlette(routes=routes, middleware=middleware)


def wsgi_app(gates: ThreadGates, **options: Any) -> WSGISessionMiddleware:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        hold, args = _args(parse_qsl(environ.get("QUERY_STRING", "")))
        if hold:
            gates.hold(hold)
        body = json.dumps(act(wsgi_session(environ), environ["PATH_INFO"], args)).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return WSGISessionMiddleware(app, secret_key=SECRET, **options)


def flask_app(gates: ThreadGates, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    app.session_interface = LazySessionInterface(**options)

    def handler(action: str) -> Any:
        hold, args = _args(flask.request.args.items())
        if hold:
            gates.hold(hold)
        if flask.request.args.get("permanent"):
            flask.session.permanent = True  # a cookie with a Max-Age, as on the other shells
        return act(flask.session, action, args)  # type: ignore[arg-type]  # a FlaskSession

    app.add_url_rule("/<action>", view_func=handler)
    return app


# -- the driver ----------------------------------------------------------------------------


@dataclass
class Reply:
    """A response as the browser sees it."""

    status: int
    body: Any
    set_cookies: list[str] = field(default_factory=list)

    @property
    def cookie(self) -> str | None:
        """The session cookie this response sets (None: it sets none, or expires it)."""
        value = self._session_cookie()
        return None if value is None or self.expired else value

    @property
    def expired(self) -> bool:
        """Whether this response expires the session cookie."""
        return any("max-age=0" in c.lower() for c in self._cookies())

    @property
    def max_age(self) -> int | None:
        """The ``Max-Age`` of the session cookie this response sets (None: none sent)."""
        for cookie in self._cookies():
            for part in cookie.split(";")[1:]:
                name, _, value = part.strip().partition("=")
                if name.lower() == "max-age":
                    return int(value)
        return None

    @property
    def sets_cookie(self) -> bool:
        """Whether this response changes the browser's session cookie at all."""
        return bool(self._cookies())

    def data(self) -> dict[str, Any]:
        """The session the handler left, each value read back from its ``repr``."""
        body = self.body or {}
        return {key: ast.literal_eval(shown) for key, (_, shown) in body.items()}

    def types(self) -> dict[str, str]:
        """The name of the type of each value the handler left in the session."""
        return {key: kind for key, (kind, _) in (self.body or {}).items()}

    def _cookies(self) -> list[str]:
        return [c for c in self.set_cookies if c.startswith(COOKIE + "=")]

    def _session_cookie(self) -> str | None:
        found = self._cookies()
        assert len(found) <= 1, f"more than one session cookie: {found}"
        return found[0].split(";", 1)[0].split("=", 1)[1] if found else None


class Shell:
    """Sends requests to one shell's app, as a browser would, each with only the cookie
    the test gives it; ``gates`` are the app's hold points."""

    name: str
    gates: Gates

    async def get(
        self, path: str, cookie: str | None = None, **params: str | int
    ) -> Reply:  # pragma: no cover - overridden
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the shell holds."""


class ASGIShell(Shell):
    name = "asgi"

    def __init__(self, **options: Any) -> None:
        self.gates = self._gates = AsyncGates()
        self.app = asgi_app(self._gates, **options)
        self._transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)

    async def get(self, path: str, cookie: str | None = None, **params: str | int) -> Reply:
        headers = {} if cookie is None else {"cookie": f"{COOKIE}={cookie}"}
        request = httpx.Request(
            "GET", "http://testserver" + path, params=_text(params), headers=headers
        )
        response = await self._transport.handle_async_request(request)
        body = await response.aread()
        return _reply(response.status_code, body, response.headers.get_list("set-cookie"))


class ThreadShell(Shell):
    """WSGI and Flask: each request served in a thread of its own, as a threaded server
    would, through werkzeug's test client (one per request, keeping no cookies)."""

    def __init__(self, name: str, app: Any, gates: ThreadGates) -> None:
        self.name = name
        self.app = app
        self.gates = gates
        self._threads = anyio.CapacityLimiter(64)  # every request of a race at once

    def _serve(self, path: str, cookie: str | None, params: dict[str, str]) -> Reply:
        headers = {} if cookie is None else {"Cookie": f"{COOKIE}={cookie}"}
        client = Client(self.app, use_cookies=False)
        try:
            response = client.get(path, query_string=params, headers=headers, buffered=True)
        except Exception:  # what a WSGI server answers for an app's exception
            return Reply(500, None)
        return _reply(response.status_code, response.data, response.headers.getlist("Set-Cookie"))

    async def get(self, path: str, cookie: str | None = None, **params: str | int) -> Reply:
        return await anyio.to_thread.run_sync(
            self._serve, path, cookie, _text(params), limiter=self._threads
        )


def _text(params: dict[str, str | int]) -> dict[str, str]:
    return {key: str(value) for key, value in params.items()}


def _reply(status: int, body: bytes, cookies: list[str]) -> Reply:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return Reply(status, parsed, list(cookies))


def make_shell(kind: str, store: Store | CookieStore, **options: Any) -> Shell:
    """``kind``'s app on ``store``, with the middleware ``options`` (Flask takes only its
    own: ``idle_timeout``, ``clock``; its ``max_size`` is the default)."""
    options.setdefault("sweep_interval", None)
    if kind == "asgi":
        return ASGIShell(store=store, **options)
    gates = ThreadGates()
    if kind == "wsgi":
        return ThreadShell(kind, wsgi_app(gates, store=store, **options), gates)
    options.pop("max_size", None)
    return ThreadShell(kind, flask_app(gates, store=store, **options), gates)


# -- stores, isolated per test -------------------------------------------------------------


@dataclass
class OpenedStore:
    """A store of one test (``tests.stores.backends.isolated_store``), for a sync shell
    (WSGI, Flask) or an async one (ASGI)."""

    store: Store
    cleanup: Callable[[], None]
    sync: bool

    async def close(self) -> None:
        try:
            self.cleanup()
        finally:
            if not self.sync:
                await self.store.aclose()


def open_store(kind: str, tmp_path: Path, *, sync: bool) -> OpenedStore:
    return OpenedStore(*isolated_store(kind, tmp_path, sync=sync), sync)


class Harness:
    """One store and the shell under test: builds the app, and looks into the store."""

    def __init__(self, opened: OpenedStore, shell: str) -> None:
        self.opened = opened
        self.store = opened.store
        self.shell_kind = shell
        self._ids = IdSigner(SecretKeys(SECRET))

    def shell(self, **options: Any) -> Shell:
        return make_shell(self.shell_kind, self.store, **options)

    async def count(self) -> int:
        """Entries the store holds (rotation markers included)."""
        if self.opened.sync:
            return await anyio.to_thread.run_sync(self.store.sync.count)
        return await self.store.count()

    async def record(self, cookie: str) -> Record | None:
        """What the store holds under the session id a cookie carries."""
        found = self._ids.verify(cookie)
        assert found is not None, "not a cookie of ours"
        if self.opened.sync:
            return await anyio.to_thread.run_sync(self.store.sync.read, found[2])
        return await self.store.read(found[2])
