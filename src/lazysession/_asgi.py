"""The ASGI shell: header plumbing and awaited store calls around the core's decisions."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from typing import Any, Protocol

import anyio

from ._cookies import vary_with_cookie
from ._core import NOTHING, Exchange
from ._errors import (
    SessionInterrupted,
    SessionUnavailable,
    StoreError,
    report_store_error,
)
from ._request import RequestInfo, is_bearer_authorization, is_bearer_request
from ._session import Session
from ._shell import (
    INTERRUPTED,
    UNAVAILABLE,
    MiddlewareOptions,
    Refusal,
    SharedCaches,
    carry_out_async,
    load_failed,
    loaded,
)
from ._sweep import AsyncSweeper, SweepSchedule
from ._types import ASGIApp, Message, Receive, Scope, Send
from .stores import Store

_REPLACED = "lazysession.replaced"
"""Set in the scope of a request without a cookie once its response has been replaced
by a 503 (kept there, rather than in a closure made for every request, since only a
request that touched its session can get that far)."""


class SessionMiddleware(MiddlewareOptions[ASGIApp]):
    """Drop-in for ``starlette.middleware.sessions.SessionMiddleware``.

    With ``store=None`` the session lives in the signed cookie, as in Starlette. With a
    store, the cookie carries only a signed random id, a session is created only when a
    handler writes to it, requests matched by ``skip_persistence`` (default: Bearer
    tokens) never create one, and the store is swept every ``sweep_interval`` seconds.
    """

    sweeper: AsyncSweeper | None = None

    def _check_store(self, store: Store) -> None:
        check_async_store(store)

    def _start_sweeper(self, interval: float) -> None:
        self.sweeper = AsyncSweeper(self.store.sweep, SweepSchedule(interval), self.metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        has_cookie = False
        for name, _ in scope["headers"]:
            if name == b"cookie":
                has_cookie = True
                break
        if has_cookie:
            await self._with_cookie(scope, receive, send)
        else:
            # Most requests: no cookie, so nothing to read, verify or load, and the session
            # can never be unavailable. The exchange is made only if the handler touches it.
            session = scope["session"] = Session()

            def send_with_session(message: Message) -> Awaitable[None]:
                # Untouched, the session can have nothing to add: hand back the server's
                # own awaitable, with no coroutine of ours in between.
                if session.accessed:
                    return self._send_touched(message, session, send, scope)
                return send(message)

            await self.app(scope, receive, send_with_session)
        sweeper = self.sweeper
        if sweeper is not None and not sweeper.lifespan_running and sweeper.due_after_request():
            await sweeper.sweep_once()

    async def _send_touched(
        self, message: Message, session: Session, send: Send, scope: Scope
    ) -> None:
        """A message of a request that came without a cookie and touched its session."""
        if message["type"] == "http.response.start":
            if not await self._finish(self.rules.exchange_for(session), message, send, scope):
                scope[_REPLACED] = True
                return
        elif _REPLACED in scope:
            return  # the app's response was replaced by a 503
        await send(message)

    async def _with_cookie(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self.rules.begin(_cookie_header(scope))
        key = exchange.load_key
        if key is None:
            session = exchange.session
            assert session is not None
        else:
            session = await self._load(exchange, key)
        scope["session"] = session
        started = replaced = False

        async def send_with_session(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                if not await self._finish(exchange, message, send, scope):
                    replaced = True
                    return
            elif replaced:
                return  # the app's response was replaced by a 503
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except SessionUnavailable:
            if started or replaced:
                raise
            await _send_refusal(send, UNAVAILABLE)

    async def _load(self, exchange: Exchange, key: str) -> Session:
        try:
            record = await self.store.read(key)
        except StoreError as error:
            return load_failed(exchange, error, self.on_store_error, self.metrics)
        return loaded(exchange, record, self.metrics)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            # A websocket reads the session of its handshake; it has no response headers
            # to carry a cookie, so nothing it changes is persisted.
            exchange = self.rules.begin(_cookie_header(scope))
            key = exchange.load_key
            scope["session"] = exchange.session if key is None else await self._load(exchange, key)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _skip(self, scope: Scope) -> bool:
        if self.skip_persistence is is_bearer_request:  # the default, read straight off the
            return _has_bearer(scope)  # headers, with no RequestInfo to build
        return self.skip_persistence(request_info(scope))

    async def _finish(self, exchange: Exchange, message: Message, send: Send, scope: Scope) -> bool:
        """At the response's start: decide, carry out the outcome and add its headers.
        On a store failure, answer 503 instead and return False."""
        outcome = exchange.finish(message["status"], self._skip, scope)
        if outcome is NOTHING:
            return True
        try:
            cookie = await carry_out_async(self.store, outcome, self.metrics)
        except StoreError as error:
            self.metrics.store_errors += 1
            report_store_error(error, "the response was replaced by a 503")
            await _send_refusal(send, UNAVAILABLE)
            return False
        except SessionInterrupted:
            await _send_refusal(send, INTERRUPTED)
            return False
        headers = message.setdefault("headers", [])
        if not isinstance(headers, list):
            headers = message["headers"] = list(headers)
        if cookie is not None:
            headers.append((b"set-cookie", cookie.encode("latin-1")))
            if not self._insecure.done:
                self._insecure.check(_host(scope))
        if outcome.vary:
            add_vary_cookie(headers)
            if self.caches.applies(True, cookie):
                make_private(headers, self.caches)
        elif cookie is not None:
            make_private(headers, self.caches)
        return True

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, with the sweep running beside it; at shutdown the sweep
        stops and the store closes what it opened, before the server hears it is done."""
        sweeper, store = self.sweeper, self.store
        sweeping = anyio.CancelScope()
        swept = anyio.Event()

        async def send_closing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                if sweeper is not None:
                    sweeping.cancel()
                    await swept.wait()
                await store.aclose()
            await send(message)

        if sweeper is None:
            await self.app(scope, receive, send_closing)
            return

        async def sweep(sweeper: AsyncSweeper) -> None:
            try:
                with sweeping:
                    await sweeper.run_forever()
            finally:
                swept.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sweep, sweeper)
            try:
                await self.app(scope, receive, send_closing)
            finally:
                tasks.cancel_scope.cancel()


class HasScope(Protocol):
    @property
    def scope(self) -> Scope: ...


def get_session(request: HasScope) -> Session:
    """``request.session``, typed as lazysession's :class:`Session` (Starlette types it as
    a plain dict), for ``regenerate()``, ``invalidate()``, ``set_lifetime()`` and ``pin()``."""
    session = request.scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError("lazysession.SessionMiddleware is not installed on this app")
    session.mark_accessed()
    return session


def check_async_store(store: Store) -> None:
    """Fail at start-up, not at the first request, when a store cannot serve ASGI."""
    check = getattr(store, "check_async", None)
    if check is not None:
        check()


def _cookie_header(scope: Scope) -> str | None:
    found: list[bytes] = [value for name, value in scope["headers"] if name == b"cookie"]
    if not found:
        return None
    return (found[0] if len(found) == 1 else b"; ".join(found)).decode("latin-1")


async def _send_refusal(send: Send, refusal: Refusal) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in refusal.headers]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body})


def _host(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server")
    return str(server[0]) if server else None


class ScopeHeaders(Mapping[str, str]):
    """The request's headers by lower-case name, read from the ASGI scope on demand
    (most predicates look at one header; building a dict for them would cost more)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """Without a KeyError for an absent header: the usual case, on every request."""
        value = _joined_header(self._raw, name.lower().encode("latin-1"))
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key.decode("latin-1").lower() for key, _ in self._raw))

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._raw})


def _joined_header(raw: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    """Every value of the header named ``wanted`` (lower case), joined; None if absent.
    (Servers send names in lower case, as ASGI asks; other spellings are matched too.)"""
    size = len(wanted)
    found = [
        value.decode("latin-1")
        for key, value in raw
        if len(key) == size and (key == wanted or key.lower() == wanted)
    ]
    return ", ".join(found) if found else None


def _has_bearer(scope: Scope) -> bool:
    """The default predicate on the raw headers: the scheme of the first Authorization
    header is the scheme of them all joined."""
    for key, value in scope["headers"]:
        if len(key) == 13 and (key == b"authorization" or key.lower() == b"authorization"):
            return is_bearer_authorization(value.decode("latin-1"))
    return False


def request_info(scope: Scope) -> RequestInfo:
    return RequestInfo(
        method=scope.get("method", "GET"),
        path=scope.get("path", "/"),
        headers=ScopeHeaders(scope["headers"]),
    )


def add_vary_cookie(headers: list[tuple[bytes, bytes]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            headers[index] = (name, vary_with_cookie(value.decode("latin-1")).encode("latin-1"))
            return
    headers.append((b"vary", b"Cookie"))


_PRIVATE = (b"cache-control", b"private")


def make_private(headers: list[tuple[bytes, bytes]], caches: SharedCaches) -> None:
    """Make a response's headers keep shared caches out (``SharedCaches``' rules)."""
    found = [
        value
        for name, value in headers
        if len(name) == 13 and (name == b"cache-control" or name.lower() == b"cache-control")
    ]
    if not found:  # the usual case: nothing of the app's to keep
        headers.append(_PRIVATE)
        return
    value = caches.rewrite([item.decode("latin-1") for item in found])
    if value is not None:
        headers[:] = [
            (name, item)
            for name, item in headers
            if len(name) != 13 or name.lower() != b"cache-control"
        ]
        headers.append((b"cache-control", value.encode("latin-1")))
