"""The same app on every shell (ASGI, WSGI, Flask), with one set of routes, and one client
that drives any of them, so a rule test is written once and runs on all three.

Routes: ``/untouched`` (never uses the session), ``/read`` (JSON of the session),
``/write?k=v...`` (GET or POST; sets each pair), ``/clear``, ``/login[?user=&remember=]``
(regenerates the id), ``/logout`` (invalidates), ``/fail`` (writes, answers 500),
``/vary`` (writes, answers with ``Vary: Accept-Encoding``), ``/stream`` (writes, streams
its body) and ``/hook`` (writes ``user=bob``, then runs the test's hook, e.g. a fault).

The client keeps its own cookie jar, the same for every shell: it sends the jar's
cookies, or exactly the ``cookie`` a test names, and drops a cookie sent back expired.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode
from wsgiref.validate import validator

import flask
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.test import Client

from lazysession import Session, SessionMiddleware, Store
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from lazysession.wsgi import get_session as wsgi_session
from tests.helpers import ROUTES, SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SHELLS = ["asgi", "wsgi", "flask"]
Hook = Callable[[], None]


def _nothing() -> None:
    return None


# -- the apps -------------------------------------------------------------------------------


def asgi_app(store: Store | None, hook: Hook = _nothing, **options: Any) -> Starlette:
    async def hooked(request: Request) -> Response:
        request.session["user"] = "bob"
        hook()
        return PlainTextResponse("handler finished")

    options.setdefault("secret_key", SECRET)
    options.setdefault("sweep_interval", None)
    return Starlette(
        routes=[*ROUTES, Route("/hook", hooked)],
        middleware=[Middleware(SessionMiddleware, store=store, **options)],
    )


JSON = [("Content-Type", "application/json")]
TEXT = [("Content-Type", "text/plain")]


def _wsgi_routes(hook: Hook) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/untouched":
            start_response("200 OK", TEXT)
            return [b"ok"]
        session = wsgi_session(environ)
        args = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        status, headers, body = "200 OK", TEXT, b"ok"
        if path == "/read":
            headers, body = JSON, json.dumps(dict(session)).encode()
        elif path == "/write":
            session.update(args)
            headers, body = JSON, json.dumps(dict(session)).encode()
        elif path == "/hook":
            session["user"] = "bob"
            hook()
            body = b"handler finished"
        elif path == "/stream":
            session["streamed"] = "yes"
            start_response("200 OK", TEXT)
            return iter([b"one ", b"two"])
        elif path in ACTIONS:
            status, headers = ACTIONS[path](session, args)
        else:
            status = "404 Not Found"
        start_response(status, headers)
        return [body]

    return app


def _clear(session: Session, args: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    session.clear()
    return "200 OK", TEXT


def _login(session: Session, args: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    session.regenerate()
    session["user"] = args.get("user", "ada")
    if args.get("remember"):
        session.set_lifetime(int(args["remember"]))
    return "200 OK", TEXT


def _logout(session: Session, args: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    session.invalidate()
    return "200 OK", TEXT


def _fail(session: Session, args: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    session["half"] = "done"
    return "500 Internal Server Error", TEXT


def _vary(session: Session, args: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    session["a"] = "1"
    return "200 OK", [*TEXT, ("Vary", "Accept-Encoding")]


ACTIONS = {"/clear": _clear, "/login": _login, "/logout": _logout, "/fail": _fail, "/vary": _vary}


def wsgi_app(store: Store | None, hook: Hook = _nothing, **options: Any) -> Any:
    """The WSGI middleware over the routes, both checked by ``wsgiref.validate``."""
    options.setdefault("secret_key", SECRET)
    options.setdefault("sweep_interval", None)
    middleware = WSGISessionMiddleware(validator(_wsgi_routes(hook)), store=store, **options)
    return validator(middleware)


FLASK_OPTIONS = {
    "max_age",
    "idle_timeout",
    "clock",
    "on_store_error",
    "skip_persistence",
    "sweep_interval",
    "touch_after",
    "metrics",
}


def flask_app(store: Store | None, hook: Hook = _nothing, **options: Any) -> flask.Flask:
    """Flask over the routes; ``options`` are the middleware's, those Flask's interface
    takes (``secret_key`` becomes ``SECRET_KEY``)."""
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = options.pop("secret_key", SECRET)
    unknown = set(options) - FLASK_OPTIONS
    assert not unknown, f"LazySessionInterface takes no {unknown}"
    options.setdefault("sweep_interval", None)
    app.session_interface = LazySessionInterface(store=store, **options)

    @app.get("/untouched")
    def untouched() -> Any:
        return "ok"

    @app.get("/read")
    def read() -> Any:
        return dict(flask.session)

    @app.route("/write", methods=["GET", "POST"])
    def write() -> Any:
        flask.session.update(flask.request.args.to_dict())
        return dict(flask.session)

    @app.get("/hook")
    def hooked() -> Any:
        flask.session["user"] = "bob"
        hook()
        return "handler finished"

    @app.get("/stream")
    def stream() -> Any:
        flask.session["streamed"] = "yes"
        return flask.Response(iter([b"one ", b"two"]))

    @app.get("/<action>")
    def act(action: str) -> Any:
        path = f"/{action}"
        if path not in ACTIONS:
            flask.abort(404)
        session: Session = flask.session  # type: ignore[assignment]
        status, headers = ACTIONS[path](session, flask.request.args.to_dict())
        return flask.Response("ok", status=int(status[:3]), headers=headers)

    return app


# -- one client for every shell ----------------------------------------------------------------


@dataclass
class Answer:
    """A response, the same whichever shell sent it; headers by any-case name."""

    status_code: int
    headers: httpx.Headers
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class ShellClient:
    """Sends requests to one shell's app, keeping the session cookie like a browser."""

    shell: str
    app: Any
    cookies: dict[str, str] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        *,
        cookie: str | None = None,
        method: str = "GET",
    ) -> Answer:
        """``cookie``: the ``Cookie`` header to send instead of the jar's."""
        sent = {name.lower(): value for name, value in (headers or {}).items()}
        if cookie is None and self.cookies:
            cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if cookie is not None:
            sent["cookie"] = cookie
        target = path + ("?" + urlencode(params) if params else "")
        if self.shell == "asgi":
            answer = await self._asgi(method, target, sent)
        else:
            answer = self._wsgi(method, target, sent)
        self._keep(answer.headers.get_list("set-cookie"))
        return answer

    async def post(self, path: str, params: dict[str, str] | None = None) -> Answer:
        return await self.get(path, params, method="POST")

    async def _asgi(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        if self._http is None:
            transport = httpx.ASGITransport(app=self.app)
            self._http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        raw = [(name.encode(), value.encode()) for name, value in headers.items()]
        response = await self._http.request(method, target, headers=raw)
        self._http.cookies.clear()  # the jar is ours
        return Answer(response.status_code, response.headers, response.text)

    def _wsgi(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        if self.shell == "flask":
            client: Client = self.app.test_client(use_cookies=False)
        else:
            client = Client(self.app, use_cookies=False)
        response = client.open(
            target, method=method, headers=list(headers.items()), base_url="http://testserver"
        )
        try:
            text = response.get_data(as_text=True)
        finally:
            response.close()
        return Answer(response.status_code, httpx.Headers(list(response.headers.items())), text)

    def _keep(self, set_cookies: list[str]) -> None:
        for line in set_cookies:
            pair, _, attributes = line.partition(";")
            name, _, value = pair.strip().partition("=")
            expired = "max-age=0" in attributes.lower().replace(" ", "")
            if expired or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def build(shell: str, store: Store | None, hook: Hook = _nothing, **options: Any) -> Any:
    """``shell``'s app over ``store``, with the middleware's ``options``."""
    make = {"asgi": asgi_app, "wsgi": wsgi_app, "flask": flask_app}[shell]
    return make(store, hook, **options)


def side(shell: str) -> str:
    """Which side of a store the shell uses: ``async`` or ``sync``."""
    return "async" if shell == "asgi" else "sync"
