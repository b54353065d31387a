"""The WSGI shell: the same rules as the ASGI middleware, with the stores' blocking side.

Rules (beyond the core's):
- The session is at ``environ["lazysession.session"]``.
- The decision is made when the app calls ``start_response``; the store work happens,
  and the server's own ``start_response`` is called with the headers it leads to (a
  ``Set-Cookie`` only if the store confirmed it), just before the first body chunk goes
  to the server (or before ``write()`` sends anything). So the session is saved before
  the headers go out, and a ``start_response(..., exc_info)`` that replaces the response
  before then replaces the decision too.
- The sweep runs in a daemon thread started by the first request (or ``start_sweeper()``)
  and stopped by ``close()`` or at interpreter exit.
- The request's headers are read once, into an :class:`EnvironView`; Flask's shell reads
  them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._cookies import vary_with_cookie
from ._core import NOTHING, Exchange
from ._environ import EnvironView
from ._environ import request_info as request_info
from ._errors import SessionUnavailable
from ._headers import TARGETED, Reply, add_session_headers
from ._middleware import MiddlewareOptions
from ._session import Session
from ._shell import BlockingShell
from ._shell import check_sync_store as check_sync_store
from ._steps import UNAVAILABLE, Refusal, run

__all__ = ["ENVIRON_KEY", "SessionMiddleware", "get_session"]

ENVIRON_KEY = "lazysession.session"

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
else:
    OptExcInfo = StartResponse = WSGIApplication = WSGIEnvironment = Any

Environ = dict[str, Any]
Headers = list[tuple[str, str]]
Write = Callable[[bytes], object]


def get_session(environ: WSGIEnvironment) -> Session:
    """The request's session, marked as read (it then varies by cookie)."""
    session: Session = environ[ENVIRON_KEY]
    session.mark_accessed()
    return session


class HeaderList:
    """Edits a WSGI response's header list as the session-header rules ask."""

    __slots__ = ()

    def add_cookie(self, headers: Headers, value: str) -> None:
        headers.append(("Set-Cookie", value))

    def vary_on_cookie(self, headers: Headers) -> None:
        for index, (name, value) in enumerate(headers):
            if name.lower() == "vary":
                headers[index] = (name, vary_with_cookie(value))
                return
        headers.append(("Vary", "Cookie"))

    def cache_control(self, headers: Headers) -> list[str]:
        return [value for name, value in headers if name.lower() == "cache-control"]

    def add_cache_control(self, headers: Headers, value: str) -> None:
        headers.append(("Cache-Control", value))

    def drop_targeted(self, headers: Headers) -> None:
        if any(len(name) == 17 and name.lower() in TARGETED for name, _ in headers):
            headers[:] = [(n, v) for n, v in headers if len(n) != 17 or n.lower() not in TARGETED]

    def replace_cache_control(self, headers: Headers, value: str) -> None:
        headers[:] = [(name, item) for name, item in headers if name.lower() != "cache-control"]
        headers.append(("Cache-Control", value))


HEADER_LIST = HeaderList()


class SessionMiddleware(BlockingShell, MiddlewareOptions[WSGIApplication]):
    """Session middleware for any WSGI app, with the ASGI middleware's parameters and
    promises: lazy creation, no store I/O without a cookie, ``skip_persistence`` with the
    Bearer default, ``Set-Cookie`` only when modified, ``Vary: Cookie`` when accessed."""

    def start_sweeper(self) -> None:
        """Start the sweep now rather than with the first request."""
        self._sweeping()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request: load its session, run the app, save what it changed."""
        self._sweeping()
        view = EnvironView(environ)
        exchange = self.rules.begin(view.cookie)
        with view.spending():
            environ[ENVIRON_KEY] = self._load(exchange)
        response = _Response(self, view, start_response, exchange)

        def start_with_session(
            status: str, headers: Headers, exc_info: OptExcInfo | None = None, /
        ) -> Write:
            if exc_info is not None and exc_info[1] is not None and response.committed:
                raise exc_info[1].with_traceback(exc_info[2])
            response.pending = (status, headers, exc_info)
            return response.write

        try:
            body = self.app(environ, start_with_session)
        except SessionUnavailable:
            if response.committed:
                raise
            return response.refuse(UNAVAILABLE)
        return _Body(body, response)


class _Response:
    """Holds the app's ``start_response`` until the headers are about to leave (with the
    first bytes of the body); then decides, does the store work and hands the server the
    headers it leads to."""

    __slots__ = (
        "_server_write",
        "committed",
        "exchange",
        "middleware",
        "pending",
        "start_response",
        "view",
    )

    def __init__(
        self,
        middleware: SessionMiddleware,
        view: EnvironView,
        start_response: StartResponse,
        exchange: Exchange,
    ) -> None:
        self.middleware = middleware
        self.view = view
        self.start_response = start_response
        self.exchange = exchange
        self.pending: tuple[str, Headers, OptExcInfo | None] | None = None
        self.committed = False
        self._server_write: Write | None = None

    def may_read_later(self) -> bool:
        """Whether the decision depends on more body being to come: the request carried
        a session cookie and has not used its session yet."""
        exchange = self.exchange
        session = exchange.session
        return exchange.had_cookie and session is not None and not session.accessed

    def try_commit(self, streaming: bool = False) -> Refusal | None:
        """Decide, do the store work and start the server's response; or say what to
        answer instead (the response is then left unstarted): the store failed, or the
        session ended or moved meanwhile. ``streaming``: more body is to come."""
        pending = self.pending
        if pending is None:
            raise RuntimeError("the WSGI app sent its body before calling start_response")
        middleware, view = self.middleware, self.view
        outcome = self.exchange.finish(
            int(pending[0][:3]),
            middleware._skip,
            view,
            user_agent=view.user_agent,
            streaming=streaming,
        )
        reply: Reply | None = None
        if outcome is not NOTHING:
            reply_or_steps = middleware.reply_for(outcome, self.view)
            if isinstance(reply_or_steps, Reply):
                reply = reply_or_steps
            else:
                with self.view.spending():
                    answer = run(reply_or_steps, middleware.sync_store)
                if isinstance(answer, Refusal):
                    return answer
                reply = answer
                if reply.events:
                    middleware.notify(reply)
        self.committed = True
        status, headers, exc_info = pending
        if reply is not None:
            headers = list(headers)
            add_session_headers(HEADER_LIST, headers, reply, self.middleware.caches)
        self._server_write = self.start_response(status, headers, exc_info)
        return None

    def write(self, data: bytes) -> object:
        """The ``write`` callable handed to the app: commits before the first bytes."""
        if not self.committed:
            refusal = self.try_commit(streaming=True)  # the app still runs: it may read
            if refusal is not None:
                self.refuse(refusal)
                raise SessionUnavailable("the response was replaced before its body")
        assert self._server_write is not None
        return self._server_write(data)

    def refuse(self, refusal: Refusal) -> list[bytes]:
        """Answer ``refusal`` instead of the app's response. The server's
        ``start_response`` has not been called yet (it is called at the commit), so this is
        its first call, with no ``exc_info``."""
        self.committed = True
        self.start_response(refusal.status_line, refusal.headers)
        return [refusal.body]


class _Body:
    """The app's response iterable, committing the session before the first chunk."""

    __slots__ = ("_body", "_response")

    def __init__(self, body: Iterable[bytes], response: _Response) -> None:
        self._body = body
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        response, body = self._response, self._body
        chunks = iter(body)
        for chunk in chunks:
            if chunk and not response.committed:
                after: bytes | None = None
                if not isinstance(body, list | tuple) and response.may_read_later():
                    # A body still being produced may read the session later: whether
                    # more follows decides Vary: Cookie (rule 7), so look one chunk ahead.
                    after = next(chunks, None)
                refusal = response.try_commit(streaming=after is not None)
                if refusal is not None:
                    yield from response.refuse(refusal)
                    return
                yield chunk
                if after is None:
                    continue
                chunk = after
            yield chunk
        if not response.committed:
            refusal = response.try_commit()
            if refusal is not None:
                yield from response.refuse(refusal)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
