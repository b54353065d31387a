"""The ASGI shell: header plumbing and awaited store calls around the core's decisions."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

import anyio

from ._asgi_headers import PRIVATE, RAW_HEADERS, VARY_COOKIE, untouched_by_rules
from ._asgi_headers import ScopeHeaders as ScopeHeaders
from ._asgi_headers import read_headers as read_headers
from ._asgi_headers import request_info as request_info
from ._core import NOTHING, Exchange
from ._errors import ConfigurationError, SessionUnavailable, StoreError
from ._headers import Reply, add_session_headers
from ._middleware import MiddlewareOptions
from ._request import RequestInfo, RequestView
from ._session import Session
from ._shell import check_async_store as check_async_store
from ._startup import RefusedStartup, in_lifespan
from ._steps import UNAVAILABLE, Refusal, run_async
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
        if exchange.load_key is None:  # nothing to load: no store time to share out
            scope["session"] = exchange.session
        elif not self.budgeted:
            scope["session"] = await self._load(exchange)
        else:
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
            if self.budgeted:
                with view.spending():
                    answer = await run_async(reply, self.backend)
            else:
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
        if untouched_by_rules(headers):  # the usual case: the rules only add headers
            if reply.cookie is not None:
                headers.append((b"set-cookie", reply.cookie.encode("latin-1")))
            if reply.vary:
                headers.append(VARY_COOKIE)
            if reply.private:
                headers.append(PRIVATE)
        else:
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


class RefusingSessionMiddleware(SessionMiddleware):
    """A ``SessionMiddleware`` whose options were refused while the framework built it at
    the first lifespan event: the lifespan answers ``lifespan.startup.failed`` with the
    error (so the server refuses to start, saying why), and any other call raises it."""

    refused: RefusedStartup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.refused.answer(scope, receive, send)
