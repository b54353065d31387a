"""The ASGI shell: header plumbing and awaited store calls around the core's decisions."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from typing import Any, Protocol

import anyio

from ._cookies import vary_with_cookie
from ._core import NOTHING, Exchange
from ._errors import ConfigurationError, SessionUnavailable, StoreError
from ._headers import TARGETED, Reply, add_session_headers
from ._middleware import MiddlewareOptions
from ._request import RequestInfo, RequestView
from ._session import Session
from ._shell import UNAVAILABLE, Refusal, run_async
from ._shell import check_async_store as check_async_store
from ._startup import RefusedStartup, in_lifespan
from ._sweep import AsyncSweeper, SweepSchedule, takes_on_swept
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

    def _refused(self, app: Any, error: ConfigurationError) -> bool:
        if not in_lifespan():
            return False
        # Built by the framework at the first lifespan event (Starlette builds its
        # middleware then), where servers log a raised error only as "lifespan
        # unsupported": answer the lifespan with the error instead.
        self.__class__ = RefusingSessionMiddleware
        self.app = app
        self.refused = RefusedStartup(error)
        return True

    def _check_store(self, store: Store) -> None:
        check_async_store(store)

    def _start_sweeper(self, interval: float) -> None:
        assert self.backend is not None  # a sweep runs only with a store
        sweep = self.backend.sweep
        tell = self.tell_async if self.on_event is not None and takes_on_swept(sweep) else None
        self.sweeper = AsyncSweeper(sweep, SweepSchedule(interval), self.metrics, tell)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        cookie, authorization, host = read_headers(scope["headers"])
        if cookie is not None:
            view = ScopeView(scope, cookie, authorization, host)
            await self._with_cookie(scope, receive, send, view)
        else:
            # Most requests: no cookie, so nothing to read, verify or load, and the session
            # can never be unavailable. The exchange is made only if the handler touches it.
            session = scope["session"] = Session()

            def send_with_session(message: Message) -> Awaitable[None]:
                # Untouched, the session can have nothing to add: hand back the server's
                # own awaitable, with no coroutine of ours in between.
                if session.accessed:
                    return self._send_touched(message, session, send, scope, authorization, host)
                return send(message)

            await self.app(scope, receive, send_with_session)
        sweeper = self.sweeper
        if sweeper is not None and not sweeper.lifespan_running and sweeper.due_after_request():
            await sweeper.sweep_once()

    async def _send_touched(
        self,
        message: Message,
        session: Session,
        send: Send,
        scope: Scope,
        authorization: bytes | None,
        host: bytes | None,
    ) -> None:
        """A message of a request that came without a cookie and touched its session."""
        if message["type"] == "http.response.start":
            view = ScopeView(scope, None, authorization, host)
            if not await self._finish(self.rules.exchange_for(session), message, send, view):
                scope[_REPLACED] = True
                return
        elif _REPLACED in scope:
            return  # the app's response was replaced by a 503
        await send(message)

    async def _with_cookie(
        self, scope: Scope, receive: Receive, send: Send, view: ScopeView
    ) -> None:
        exchange = self.rules.begin(view.cookie)
        with view.spending():
            scope["session"] = await self._load(exchange)
        started = replaced = False
        held: Message | None = None

        async def start(message: Message, streaming: bool) -> bool:
            nonlocal started, replaced
            started = True
            if not await self._finish(exchange, message, send, view, streaming):
                replaced = True
                return False
            await send(message)
            return True

        async def send_with_session(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                session = exchange.session
                if exchange.had_cookie and session is not None and not session.accessed:
                    # The server sends nothing before the first body message (ASGI): the
                    # decision waits for it, to learn whether more body is to come.
                    held = message
                    return
                await start(message, False)
                return
            if held is not None:
                first, held = held, None
                more = message["type"] == "http.response.body" and message.get("more_body")
                if not await start(first, bool(more)):
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
            return
        if held is not None:  # a start with no body after it: send what the app sent
            await start(held, False)

    async def _load(self, exchange: Exchange) -> Session:
        key = exchange.load_key
        if key is None:
            session = exchange.session
            assert session is not None
            return session
        store = self.backend
        assert store is not None  # only a store's session has a key to load
        try:
            record = await store.read(key)
        except StoreError as error:
            return self.load_failed(exchange, error)
        return self.loaded(exchange, record)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            # A websocket reads the session of its handshake; it has no response headers
            # to carry a cookie, so nothing it changes is persisted.
            cookie = read_headers(scope["headers"])[0]
            exchange = self.rules.begin(None if cookie is None else cookie.decode("latin-1"))
            scope["session"] = await self._load(exchange)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _finish(
        self,
        exchange: Exchange,
        message: Message,
        send: Send,
        view: ScopeView,
        streaming: bool = False,
    ) -> bool:
        """At the response's start: decide, carry out the outcome and add its headers.
        On a store failure, answer 503 instead and return False. ``streaming``: more body
        follows the first message."""
        outcome = exchange.finish(
            message["status"], self._skip, view, user_agent=view.user_agent, streaming=streaming
        )
        if outcome is NOTHING:
            return True
        reply = self.reply_for(outcome, view)
        if not isinstance(reply, Reply):
            with view.spending():
                answer = await run_async(reply, self.backend)
            if isinstance(answer, Refusal):
                await _send_refusal(send, answer)
                return False
            reply = answer
            if reply.events:
                await self.notify_async(reply)
        headers = message.setdefault("headers", [])
        if not isinstance(headers, list):
            headers = message["headers"] = list(headers)
        add_session_headers(RAW_HEADERS, headers, reply, self.caches)
        return True

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, with the sweep running beside it; at shutdown the sweep
        stops and the store closes what it opened, before the server hears it is done."""
        sweeper, store = self.sweeper, self.backend
        sweeping = anyio.CancelScope()
        swept = anyio.Event()

        async def send_closing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                if sweeper is not None:
                    sweeping.cancel()
                    await swept.wait()
                if store is not None:
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


async def _send_refusal(send: Send, refusal: Refusal) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in refusal.headers]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body})


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


def request_info(scope: Scope) -> RequestInfo:
    return RequestInfo(
        method=scope.get("method", "GET"),
        path=scope.get("path", "/"),
        headers=ScopeHeaders(scope["headers"]),
    )


Read = tuple[bytes | None, bytes | None, bytes | None]


def read_headers(raw: list[tuple[bytes, bytes]]) -> Read:
    """The request's ``Cookie`` headers (joined), its first ``Authorization`` and ``Host``
    headers, in one walk over the scope's headers."""
    cookie = authorization = host = None
    for name, value in raw:
        if name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
        elif name == b"host":
            if host is None:
                host = value
        elif (
            len(name) == 13
            and authorization is None
            and (name == b"authorization" or name.lower() == b"authorization")
        ):
            authorization = value
    return cookie, authorization, host


class ScopeView(RequestView):
    """The request as :func:`read_headers` read it from the ASGI scope."""

    __slots__ = ("_host", "scope")

    def __init__(
        self,
        scope: Scope,
        cookie: bytes | None,
        authorization: bytes | None,
        host: bytes | None,
    ) -> None:
        self.cookie = None if cookie is None else cookie.decode("latin-1")
        self.authorization = None if authorization is None else authorization.decode("latin-1")
        self._host = host
        self._info = None
        self.scope = scope

    def host(self) -> str | None:
        if self._host is not None:
            return str(self._host.decode("latin-1"))
        server = self.scope.get("server")
        return str(server[0]) if server else None

    def _build_info(self) -> RequestInfo:
        return request_info(self.scope)


_VARY = b"vary"
_CACHE_CONTROL = b"cache-control"
_TARGETED = tuple(name.encode() for name in TARGETED)


RawHeaderList = list[tuple[bytes, bytes]]


class RawHeaders:
    """Edits an ASGI response's header list as the session-header rules ask."""

    __slots__ = ()

    def add_cookie(self, raw: RawHeaderList, value: str) -> None:
        raw.append((b"set-cookie", value.encode("latin-1")))

    def vary_on_cookie(self, raw: RawHeaderList) -> None:
        for index, (name, value) in enumerate(raw):
            if name.lower() == _VARY:
                raw[index] = (name, vary_with_cookie(value.decode("latin-1")).encode("latin-1"))
                return
        raw.append((_VARY, b"Cookie"))

    def cache_control(self, raw: RawHeaderList) -> list[str]:
        return [
            value.decode("latin-1")
            for name, value in raw
            if len(name) == 13 and (name == _CACHE_CONTROL or name.lower() == _CACHE_CONTROL)
        ]

    def add_cache_control(self, raw: RawHeaderList, value: str) -> None:
        raw.append((_CACHE_CONTROL, value.encode("latin-1")))

    def drop_targeted(self, raw: RawHeaderList) -> None:
        if any(len(name) == 17 and name.lower() in _TARGETED for name, _ in raw):
            raw[:] = [(n, v) for n, v in raw if len(n) != 17 or n.lower() not in _TARGETED]

    def replace_cache_control(self, raw: RawHeaderList, value: str) -> None:
        raw[:] = [
            (name, item) for name, item in raw if len(name) != 13 or name.lower() != _CACHE_CONTROL
        ]
        raw.append((_CACHE_CONTROL, value.encode("latin-1")))


RAW_HEADERS = RawHeaders()


class RefusingSessionMiddleware(SessionMiddleware):
    """A ``SessionMiddleware`` whose options were refused while the framework built it at
    the first lifespan event: the lifespan answers ``lifespan.startup.failed`` with the
    error (so the server refuses to start, saying why), and any other call raises it."""

    refused: RefusedStartup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.refused.answer(scope, receive, send)
