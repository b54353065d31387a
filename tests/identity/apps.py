"""One app with login, "who am I" and "your devices" routes on every shell (ASGI, WSGI,
Flask), for the identity tests.

Routes: ``/login?owner=`` (``regenerate(owner=...)``), ``/rotate`` (``regenerate()``),
``/me`` (owner, handle, login time and age as JSON), ``/devices`` (the owner's listed
handles, as the store gives them), ``/write?k=v``, ``/logout``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lazysession import Session, SessionMiddleware, Store
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from lazysession.wsgi import get_session as wsgi_session
from tests.helpers import SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def act(session: Session, path: str, args: dict[str, str]) -> Any:
    """What every route but ``/devices`` does; its JSON answer."""
    if path == "/login":
        session.regenerate(owner=args["owner"])
        session["user"] = args["owner"]
    elif path == "/rotate":
        session.regenerate()
    elif path == "/write":
        session.update(args)
    elif path == "/logout":
        session.invalidate()
    at = session.authenticated_at
    return {
        "owner": session.owner,
        "handle": session.handle,
        "authenticated_at": None if at is None else at.timestamp(),
        "auth_age": session.auth_age(),
    }


def listed(infos: Iterable[Any]) -> list[str]:
    return [info.handle for info in infos]


def asgi_app(store: Store, **options: Any) -> Starlette:
    async def route(request: Request) -> Response:
        session = request.session
        assert isinstance(session, Session)
        if request.url.path == "/devices":
            owner = session.owner
            return JSONResponse([] if owner is None else listed(await store.sessions_of(owner)))
        return JSONResponse(act(session, request.url.path, dict(request.query_params)))

    paths = ["/login", "/rotate", "/me", "/devices", "/write", "/logout"]
    options.setdefault("secret_key", SECRET)
    options.setdefault("sweep_interval", None)
    return Starlette(
        routes=[Route(path, route) for path in paths],
        middleware=[Middleware(SessionMiddleware, store=store, **options)],
    )


def wsgi_app(store: Store, **options: Any) -> Callable[..., Iterable[bytes]]:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = wsgi_session(environ)
        path = environ["PATH_INFO"]
        if path == "/devices":
            owner = session.owner
            answer: Any = [] if owner is None else listed(store.sync.sessions_of(owner))
        else:
            answer = act(session, path, dict(parse_qsl(environ.get("QUERY_STRING", ""))))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    options.setdefault("secret_key", SECRET)
    options.setdefault("sweep_interval", None)
    return WSGISessionMiddleware(app, store=store, **options)


def flask_app(store: Store, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = options.pop("secret_key", SECRET)
    options.setdefault("sweep_interval", None)
    app.session_interface = LazySessionInterface(store=store, **options)

    @app.get("/<name>")
    def route(name: str) -> Any:
        session: Session = flask.session  # type: ignore[assignment]
        if name == "devices":
            owner = session.owner
            return [] if owner is None else listed(store.sync.sessions_of(owner))
        return act(session, f"/{name}", flask.request.args.to_dict())

    return app


def build(shell: str, store: Store, **options: Any) -> Any:
    make = {"asgi": asgi_app, "wsgi": wsgi_app, "flask": flask_app}[shell]
    return make(store, **options)
