"""Stores reached through a :class:`~tests.reliability.proxy.Proxy`, and the apps the
fault tests drive through each shell (ASGI, WSGI, Flask)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import flask
import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from werkzeug.test import Client

from lazysession import SessionMiddleware, Store
from lazysession.flask import LazySessionInterface
from lazysession.stores import RedisStore, SQLAlchemyStore
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.conftest import require_server
from tests.helpers import ROUTES, SECRET
from tests.reliability.proxy import Proxy
from tests.stores.backends import MYSQL, POSTGRES, REDIS, drop_table, server_reachable
from tests.wsgi.apps import app as wsgi_app

TIMEOUT = 1.0
"""The ``timeout=`` the fault tests give their stores."""
BOUND = 2 * TIMEOUT
"""How long a request may take to answer when its store hangs."""

SERVERS = {"postgresql": (POSTGRES, 5432), "mysql": (MYSQL, 3306), "redis": (REDIS, 6379)}

SQL_ASYNC_KINDS = ["postgresql+asyncpg", "postgresql+psycopg", "mysql+asyncmy", "mysql+aiomysql"]
ASYNC_KINDS = [*SQL_ASYNC_KINDS, "redis"]
SYNC_KINDS = ["postgresql+psycopg", "mysql+pymysql", "redis"]


def server_of(kind: str) -> str:
    return kind.split("+")[0]


def sync_url(kind: str, port: int | None = None) -> str:
    """A blocking URL to the server behind ``kind``, straight or through ``port``."""
    server = server_of(kind)
    url, real_port = SERVERS[server]
    driver = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}[server]
    url = driver + url[url.index("://") :]
    return url if port is None else url.replace(f":{real_port}/", f":{port}/")


class Opened:
    """Stores a test opened through proxies, cleaned up straight (not through a proxy)."""

    def __init__(self) -> None:
        self.proxies: list[Proxy] = []
        self.stores: list[tuple[str, Store]] = []

    def proxy(self, kind: str) -> Proxy:
        url, port = SERVERS[server_of(kind)]
        if not server_reachable(url):
            require_server(f"no {server_of(kind)} server at {url}")
        proxy = Proxy(port)
        proxy.up()
        self.proxies.append(proxy)
        return proxy

    def store(self, kind: str, port: int, **options: Any) -> Store:
        """A ``kind`` store (a driver name, or ``redis``) reached through ``port``."""
        options.setdefault("timeout", TIMEOUT)
        store: Store
        if kind == "redis":
            prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
            store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix=prefix, **options)
        else:
            url = sync_url(kind, port)
            url = kind + url[url.index("://") :]
            table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
            # The table is made straight, with the default timeout: creating it is not what
            # these tests time, and on a busy machine it can take longer than TIMEOUT.
            straight = SQLAlchemyStore(sync_url(kind), table_name=table)
            straight.sync.count()
            straight.sync.close()
            store = SQLAlchemyStore(url, table_name=table, **options)
        self.stores.append((kind, store))
        return store

    async def close(self) -> None:
        for proxy in self.proxies:
            proxy.up()
        for kind, store in self.stores:
            with anyio.move_on_after(10):
                await forget(kind, store)
        for proxy in self.proxies:
            proxy.close()


async def forget(kind: str, store: Store) -> None:
    """Remove what ``store`` left on its server, then close it."""
    if isinstance(store, SQLAlchemyStore) and not kind.startswith("sqlite"):
        drop_table(sync_url(kind), store.table.name)
    elif isinstance(store, RedisStore):
        admin = redis.Redis.from_url(REDIS)
        for key in list(admin.scan_iter(match=store.prefix + "*")):
            admin.delete(key)
        admin.close()
    await store.aclose()
    store.sync.close()


@contextmanager
def opened_sync() -> Iterator[Opened]:
    """:class:`Opened` for blocking tests."""
    opened = Opened()
    try:
        yield opened
    finally:
        anyio.run(opened.close)


def asgi_app(store: Store, **options: Any) -> Starlette:
    options.setdefault("sweep_interval", None)
    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store, **options)],
    )


def wsgi_client(store: Store, shell: str) -> Client:
    """A test client for the raw WSGI middleware or for Flask, both with ``/read``,
    ``/write?key=value...`` and ``/untouched``."""
    if shell == "wsgi":
        return Client(WSGISessionMiddleware(wsgi_app, SECRET, store=store, sweep_interval=None))
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    app.session_interface = LazySessionInterface(store=store, sweep_interval=None)

    @app.get("/read")
    def read() -> Any:
        return dict(flask.session)

    @app.get("/untouched")
    def untouched() -> Any:
        return "ok"

    @app.get("/write")
    def write() -> Any:
        flask.session.update(flask.request.args)
        return dict(flask.session)

    return app.test_client()


T = TypeVar("T")


async def timed(call: Callable[[], Awaitable[T]], bound: float = BOUND) -> tuple[T, float]:
    """``call()``'s answer and the seconds it took; fails the test past ``bound`` (also
    when the call could not be cancelled and answered late)."""
    started = time.perf_counter()
    with anyio.move_on_after(bound):
        answer = await call()
        took = time.perf_counter() - started
        if took <= bound:
            return answer, took
    raise NoAnswer(f"no answer within {bound} s (after {time.perf_counter() - started:.2f} s)")


class NoAnswer(AssertionError):
    """A call took longer than its bound."""


def timed_sync(call: Callable[[], T], bound: float = BOUND) -> tuple[T, float]:
    """``call()``'s answer and the seconds it took, run in a thread; fails the test past
    ``bound`` (the thread is left to the proxy's clean-up, which resets its connection)."""
    answers: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            answers.append(call())
        except BaseException as error:  # handed to the test's thread
            errors.append(error)

    started = time.perf_counter()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(bound)
    if worker.is_alive():
        raise NoAnswer(f"no answer within {bound} s")
    if errors:
        raise errors[0]
    return answers[0], time.perf_counter() - started
