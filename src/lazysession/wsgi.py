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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._cookies import vary_with_cookie
from ._core import NOTHING, Exchange, Outcome
from ._errors import (
    SessionInterrupted,
    SessionUnavailable,
    StoreError,
    report_store_error,
)
from ._request import RequestInfo
from ._session import Session
from ._shell import (
    INTERRUPTED,
    UNAVAILABLE,
    MiddlewareOptions,
    Refusal,
    SharedCaches,
    carry_out,
    load_failed,
    loaded,
)
from ._sweep import SweepSchedule, ThreadSweeper
from .metrics import Metrics
from .stores import Store, SyncStore

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


def check_sync_store(store: Store) -> SyncStore:
    """Fail at start-up, not at the first request, when a store cannot serve WSGI."""
    check = getattr(store, "check_sync", None)
    if check is not None:
        check()
    return store.sync


class EnvironHeaders(Mapping[str, str]):
    """The request's headers by lower-case name, read from the WSGI environ on demand."""

    __slots__ = ("_environ",)

    def __init__(self, environ: WSGIEnvironment) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def get(self, name: str, default: Any = None) -> Any:
        """Without a KeyError for an absent header: the usual case, on every request."""
        value = self._environ.get(self._key(name))
        return default if value is None or value == "" else str(value)

    def __iter__(self) -> Iterator[str]:
        for key, value in self._environ.items():
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def request_info(environ: WSGIEnvironment) -> RequestInfo:
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return RequestInfo(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        path=path or "/",
        headers=EnvironHeaders(environ),
    )


def add_session_headers(
    headers: Headers, cookie: str | None, vary: bool, caches: SharedCaches | None = None
) -> Headers:
    """``headers`` with a ``Set-Cookie`` of ``cookie`` and, if ``vary``, ``Vary: Cookie``;
    with ``caches``, made private by its rules when they apply."""
    headers = list(headers)
    if cookie is not None:
        headers.append(("Set-Cookie", cookie))
    if vary:
        for index, (name, value) in enumerate(headers):
            if name.lower() == "vary":
                headers[index] = (name, vary_with_cookie(value))
                break
        else:
            headers.append(("Vary", "Cookie"))
    if caches is not None and caches.applies(vary, cookie):
        found = [value for name, value in headers if name.lower() == "cache-control"]
        if not found:  # the usual case: nothing of the app's to keep
            headers.append(("Cache-Control", "private"))
            return headers
        private = caches.rewrite(found)
        if private is not None:
            headers = [(name, value) for name, value in headers if name.lower() != "cache-control"]
            headers.append(("Cache-Control", private))
    return headers


def persist(store: SyncStore, outcome: Outcome, metrics: Metrics | None = None) -> str | None:
    """Carry out an outcome's store work; the ``Set-Cookie`` value to send, if any."""
    return carry_out(store, outcome, metrics if metrics is not None else Metrics())


class SessionMiddleware(MiddlewareOptions[WSGIApplication]):
    """Session middleware for any WSGI app, with the ASGI middleware's parameters and
    promises: lazy creation, no store I/O without a cookie, ``skip_persistence`` with the
    Bearer default, ``Set-Cookie`` only when modified, ``Vary: Cookie`` when accessed."""

    sweeper: ThreadSweeper | None = None

    def _check_store(self, store: Store) -> None:
        self.sync_store = check_sync_store(store)

    def _start_sweeper(self, interval: float) -> None:
        self.sweeper = ThreadSweeper(self.sync_store.sweep, SweepSchedule(interval), self.metrics)

    def start_sweeper(self) -> None:
        """Start the sweep now rather than with the first request."""
        if self.sweeper is not None:
            self.sweeper.start()

    def close(self) -> None:
        """Stop the sweep thread."""
        if self.sweeper is not None:
            self.sweeper.stop()

    def _skip(self, environ: WSGIEnvironment) -> bool:
        return self.skip_persistence(request_info(environ))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.sweeper is not None and not self.sweeper.running:
            self.sweeper.start()
        exchange = self.rules.begin(environ.get("HTTP_COOKIE"))
        key = exchange.load_key
        environ[ENVIRON_KEY] = exchange.session if key is None else self._load(exchange, key)
        response = _Response(self, environ, start_response)

        def start_with_session(
            status: str, headers: Headers, exc_info: OptExcInfo | None = None, /
        ) -> Write:
            if exc_info is not None and exc_info[1] is not None and response.committed:
                raise exc_info[1].with_traceback(exc_info[2])
            response.outcome = exchange.finish(int(status[:3]), self._skip, environ)
            response.pending = (status, headers, exc_info)
            return response.write

        try:
            body = self.app(environ, start_with_session)
        except SessionUnavailable:
            if response.committed:
                raise
            return response.refuse(UNAVAILABLE)
        return _Body(body, response)

    def _load(self, exchange: Exchange, key: str) -> Session:
        try:
            record = self.sync_store.read(key)
        except StoreError as error:
            return load_failed(exchange, error, self.on_store_error, self.metrics)
        return loaded(exchange, record, self.metrics)


class _Response:
    """Holds the app's ``start_response`` and the decision until the headers are about to
    leave; then does the store work and hands the server the headers it leads to."""

    __slots__ = (
        "_server_write",
        "committed",
        "environ",
        "middleware",
        "outcome",
        "pending",
        "start_response",
    )

    def __init__(
        self, middleware: SessionMiddleware, environ: WSGIEnvironment, start_response: StartResponse
    ) -> None:
        self.middleware = middleware
        self.environ = environ
        self.start_response = start_response
        self.outcome: Outcome = NOTHING
        self.pending: tuple[str, Headers, OptExcInfo | None] | None = None
        self.committed = False
        self._server_write: Write | None = None

    def commit(self) -> None:
        """Do the store work and start the server's response; a StoreError leaves the
        response unstarted (the caller answers 503)."""
        if self.committed:
            return
        outcome, pending = self.outcome, self.pending
        if pending is None:
            raise RuntimeError("the WSGI app sent its body before calling start_response")
        cookie = None
        if outcome is not NOTHING:
            middleware = self.middleware
            try:
                cookie = carry_out(middleware.sync_store, outcome, middleware.metrics)
            except StoreError:
                middleware.metrics.store_errors += 1
                raise
        self.committed = True
        status, headers, exc_info = pending
        if outcome is not NOTHING:
            headers = add_session_headers(headers, cookie, outcome.vary, self.middleware.caches)
            insecure = self.middleware._insecure
            if cookie is not None and not insecure.done:
                insecure.check(self.environ.get("HTTP_HOST") or self.environ.get("SERVER_NAME"))
        self._server_write = self.start_response(status, headers, exc_info)

    def write(self, data: bytes) -> object:
        """The ``write`` callable handed to the app: commits before the first bytes."""
        if not self.committed:
            refusal = self.try_commit()
            if refusal is not None:
                self.refuse(refusal)
                raise SessionUnavailable("the response was replaced before its body")
        assert self._server_write is not None
        return self._server_write(data)

    def try_commit(self) -> Refusal | None:
        """Commit, or say what to answer instead: the store failed, or the session ended
        or moved meanwhile."""
        try:
            self.commit()
        except StoreError as error:
            report_store_error(error, "the response was replaced by a 503")
            return UNAVAILABLE
        except SessionInterrupted:
            return INTERRUPTED
        return None

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
        response = self._response
        for chunk in self._body:
            if chunk and not response.committed:
                refusal = response.try_commit()
                if refusal is not None:
                    yield from response.refuse(refusal)
                    return
            yield chunk
        if not response.committed:
            refusal = response.try_commit()
            if refusal is not None:
                yield from response.refuse(refusal)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
