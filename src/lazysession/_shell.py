"""What the ASGI, WSGI and Flask shells share around their store calls, so that only the
calls themselves (awaited or not) are written more than once.

Rules for the options (checked once, when the middleware is built):
- Starlette's parameters take what Starlette takes: ``max_age`` may be 0 or negative
  (every session then expires at once, and the browser is told to drop its cookie) or
  ``None``; lazysession also takes a ``timedelta`` wherever it takes seconds.
- A value of the wrong type or out of range raises :class:`ConfigurationError` naming
  the option and what it takes, never a bare ``TypeError`` or ``ValueError``.
- ``store`` may be a URL (``"redis://..."``, ``"sqlite+aiosqlite:///..."``): the store
  it names is built, as ``store_from_url`` does.

Rules for shared caches (``SharedCaches``, the same on every shell):
- A response that sends the session cookie (a new or rotated id, an expired cookie, the
  cookie store's data) is never left storable by a shared cache, whatever the app said:
  its ``Cache-Control`` loses ``public`` and ``s-maxage`` and gains ``private``. The
  cookie is a credential, added by the middleware rather than by the handler that chose
  ``public``; a proxy that kept it would log the next visitor in as this one.
- A response that read the session is made private the same way, unless
  ``private_reads=False``: then it keeps the app's ``Cache-Control`` and gets only
  ``Vary: Cookie`` (Django's rule), for apps behind a cache that keys on the cookie.
- ``no-store``, or ``private`` unqualified, already keeps every shared cache out: such a
  header is left as the app wrote it. Every other directive (``max-age``, ``no-cache``,
  ``must-revalidate``, extensions) is kept, in its order; several ``Cache-Control``
  headers become one. A response that never touched the session is left alone.
- Dropping an app's ``public`` or ``s-maxage`` logs one warning per middleware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._cookies import CookieSettings
from ._core import DEFAULT_MAX_SIZE, Outcome, SessionRules, store_calls
from ._errors import (
    INTERRUPTED_BODY,
    UNAVAILABLE_BODY,
    ConfigurationError,
    StoreError,
    logger,
    report_store_error,
)
from ._expiry import DEFAULT_TOUCH_AFTER, Clock, utc_now
from ._request import InsecureCookieWarning, SkipPredicate, is_bearer_request
from ._session import Session, UnavailableSession
from .metrics import Metrics
from .stores import CookieStore, Store

if TYPE_CHECKING:
    from ._core import Exchange
    from .stores import Record, SyncStore

App = TypeVar("App")


@dataclass(frozen=True)
class Refusal:
    """A response the middleware answers with instead of the app's, whose headers have
    not left yet: every shell sends the same status, headers and body."""

    status: int
    reason: str
    body: bytes
    retry_after: str | None = None

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(self.body))),
        ]
        if self.retry_after is not None:
            headers.append(("Retry-After", self.retry_after))
        return headers


UNAVAILABLE = Refusal(503, "Service Unavailable", UNAVAILABLE_BODY, retry_after="5")
"""The store failed: nothing was saved, try again shortly."""
INTERRUPTED = Refusal(409, "Conflict", INTERRUPTED_BODY)
"""The session ended or moved while the request ran: its changes were not saved."""

STORE_ERROR_POLICIES = ("503", "empty")


@dataclass(frozen=True, slots=True)
class PrivateCacheControl:
    """The ``Cache-Control`` value a response must carry instead of the app's."""

    value: str
    dropped_public: bool
    """The app's ``public`` or ``s-maxage`` was taken out."""


_SHARED_ONLY = frozenset(("public", "s-maxage"))


def _directives(values: Iterable[str]) -> list[str]:
    """The directives of ``Cache-Control`` header values, in order, each as written
    (stripped); commas inside a quoted argument (``no-cache="a, b"``) do not split."""
    found: list[str] = []
    for value in values:
        start, quoted, escaped = 0, False, False
        for index, char in enumerate(value):
            if escaped:
                escaped = False
            elif quoted and char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                found.append(value[start:index].strip())
                start = index + 1
        found.append(value[start:].strip())
    return [directive for directive in found if directive]


def private_cache_control(values: Iterable[str]) -> PrivateCacheControl | None:
    """What ``Cache-Control`` (the header's ``values``, none if absent) must become so
    that no shared cache stores the response; None when it already keeps them out
    (``no-store``, or an unqualified ``private``)."""
    kept: list[str] = []
    dropped = False
    for directive in _directives(values):
        name = directive.split("=", 1)[0].strip().lower()
        if name == "no-store" or directive.lower() == "private":
            return None
        if name in _SHARED_ONLY:
            dropped = True
        elif name != "private":  # private="field": only those fields; we need it whole
            kept.append(directive)
    kept.append("private")
    return PrivateCacheControl(", ".join(kept), dropped)


class SharedCaches:
    """The shared-cache rules above, for one middleware (``private_reads`` is its option;
    it warns once)."""

    __slots__ = ("private_reads", "warned")

    def __init__(self, private_reads: object) -> None:
        if not isinstance(private_reads, bool):
            raise ConfigurationError(
                f"private_reads={private_reads!r}: expected True (responses that read the "
                "session are private) or False (they only get Vary: Cookie)"
            )
        self.private_reads = private_reads
        self.warned = False

    def applies(self, vary: bool, cookie: str | None) -> bool:
        """Whether a response whose outcome varies (``vary``: the session was used) and
        sends ``cookie`` must be made private."""
        return cookie is not None or (vary and self.private_reads)

    def rewrite(self, values: Iterable[str]) -> str | None:
        """The ``Cache-Control`` value to send instead of ``values``; None: keep them."""
        private = private_cache_control(values)
        if private is None:
            return None
        if private.dropped_public and not self.warned:
            self.warned = True
            logger.warning(
                "lazysession: a response marked Cache-Control: public (or s-maxage) sent or "
                "read the session, so it was made private: a shared cache must not hand one "
                "visitor's session cookie or page to the next. Keep such routes away from "
                "the session, or mark them private; private_reads=False lets responses that "
                "only read it stay public (varied by Cookie)"
            )
        return private.value


_MISSING: Any = object()


def seconds_option(
    name: str, value: object, *, positive: bool = True, allow_none: bool = True
) -> int | None:
    """``value`` as whole seconds: an ``int`` or a ``timedelta`` (``None`` where allowed);
    ``positive`` refuses 0 and below. Anything else is a ConfigurationError naming
    ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds != int(seconds):
            raise ConfigurationError(f"{name}={value!r}: use whole seconds")
        value = int(seconds)
    if not isinstance(value, int) or isinstance(value, bool):
        kinds = "an int or a timedelta" + (", or None" if allow_none else "")
        raise ConfigurationError(
            f"{name}={value!r}: expected a number of seconds ({kinds}), not {type(value).__name__}"
        )
    if positive and value <= 0:
        raise ConfigurationError(f"{name}={value!r}: must be a positive number of seconds")
    return value


def fraction_option(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigurationError(
            f"{name}={value!r}: expected a fraction of the idle window, from 0 to 1"
        )
    return float(value)


def _size_option(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name}={value!r}: expected a positive number of bytes")
    return value


def interval_option(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(
            f"{name}={value!r}: expected seconds between sweeps; 0 or None disables them"
        )
    return float(value)


def store_option(name: str, value: object) -> Store:
    """The ``store`` option: a store, a URL naming one, or None (the cookie store)."""
    if value is None:
        return CookieStore()
    if isinstance(value, Store):
        return value
    if isinstance(value, str):
        from .config import store_from_url

        return store_from_url(value)
    hint = "; pass an instance, e.g. MemoryStore()" if isinstance(value, type) else ""
    raise ConfigurationError(
        f"{name}={value!r}: expected a store (MemoryStore(), SQLAlchemyStore(...), "
        f"RedisStore(...)) or a URL such as 'redis://localhost:6379/0'{hint}"
    )


def encrypt_option(value: object) -> bool:
    """The ``encrypt`` option: a bool; True needs the ``encryption`` extra."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"encrypt={value!r}: expected True or False")
    if value:
        from ._crypto import require_cryptography

        require_cryptography()
    return value


def check_policy(on_store_error: str) -> str:
    if on_store_error not in STORE_ERROR_POLICIES:
        raise ConfigurationError("on_store_error must be '503' or 'empty'")
    return on_store_error


def loaded(exchange: Exchange, record: Record | None, metrics: Metrics) -> Session:
    """Hand the store's answer to the core, counting a session that was found."""
    session = exchange.loaded(record)
    if exchange.session_id is not None and not exchange.retired:
        metrics.loaded += 1
    return session


def _no_store_work(outcome: Outcome) -> bool:
    return (
        not outcome.interrupted
        and outcome.delete is None
        and outcome.write is None
        and outcome.rotate is None
        and outcome.touch is None
    )


async def carry_out_async(store: Store, outcome: Outcome, metrics: Metrics) -> str | None:
    """Await the store calls of ``outcome``; the ``Set-Cookie`` value to send, if any."""
    if _no_store_work(outcome):
        metrics.skipped += outcome.skipped
        return outcome.set_cookie
    calls = store_calls(outcome, metrics)
    try:
        name, args, kwargs = next(calls)
        while True:
            answer: Any = await getattr(store, name)(*args, **kwargs)
            name, args, kwargs = calls.send(answer)
    except StopIteration as done:
        cookie: str | None = done.value
        return cookie


def carry_out(store: SyncStore, outcome: Outcome, metrics: Metrics) -> str | None:
    """Make the store calls of ``outcome``; the ``Set-Cookie`` value to send, if any."""
    if _no_store_work(outcome):
        metrics.skipped += outcome.skipped
        return outcome.set_cookie
    calls = store_calls(outcome, metrics)
    try:
        name, args, kwargs = next(calls)
        while True:
            name, args, kwargs = calls.send(getattr(store, name)(*args, **kwargs))
    except StopIteration as done:
        cookie: str | None = done.value
        return cookie


def load_failed(
    exchange: Exchange,
    error: StoreError,
    on_store_error: str,
    metrics: Metrics,
    placeholder: type[Session] = UnavailableSession,
) -> Session:
    """The store could not load the session: log once, count, and stand in for it."""
    metrics.store_errors += 1
    proceed = on_store_error == "empty"
    report_store_error(
        error, "serving an empty, unsaved session" if proceed else "answering 503 if used"
    )
    return exchange.unavailable(proceed=proceed, placeholder=placeholder)


class MiddlewareOptions(Generic[App]):
    """The options both middlewares take, with Starlette's names and defaults first, and
    what they build from them; a shell adds only its store check and its sweeper."""

    def __init__(
        self,
        app: App,
        secret_key: object = _MISSING,
        session_cookie: str = "session",
        max_age: int | timedelta | None = 14 * 24 * 60 * 60,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        store: Store | str | None = None,
        skip_persistence: SkipPredicate = is_bearer_request,
        idle_timeout: int | timedelta | None = None,
        touch_after: float = DEFAULT_TOUCH_AFTER,
        max_size: int = DEFAULT_MAX_SIZE,
        on_store_error: Literal["503", "empty"] = "503",
        sweep_interval: float | timedelta | None = 300,
        metrics: Metrics | None = None,
        encrypt: bool = False,
        private_reads: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        shell = type(self).__name__
        if secret_key is _MISSING or secret_key is None:
            raise ConfigurationError(
                f"{shell} needs secret_key=...: a long random string, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        lifetime = seconds_option("max_age", max_age, positive=False)
        idle = seconds_option("idle_timeout", idle_timeout)
        touch = fraction_option("touch_after", touch_after)
        size = _size_option("max_size", max_size)
        interval = interval_option("sweep_interval", sweep_interval)
        if not callable(skip_persistence):
            raise ConfigurationError(
                f"skip_persistence={skip_persistence!r}: expected a predicate over the request"
            )
        self.app = app
        self.on_store_error = check_policy(on_store_error)
        self.store: Store = store_option("store", store)
        self._check_store(self.store)
        self.skip_persistence = skip_persistence
        self.caches = SharedCaches(private_reads)
        self.rules = SessionRules.from_options(
            secret_key=secret_key,
            store=self.store,
            cookie=CookieSettings(
                name=session_cookie,
                path=path,
                domain=domain,
                max_age=lifetime,
                same_site=same_site,
                secure=https_only,
                partitioned=partitioned,
            ),
            idle_timeout=idle,
            touch_after=touch,
            max_size=size,
            encrypt=encrypt_option(encrypt),
            clock=clock,
        )
        self._insecure = InsecureCookieWarning(https_only)
        self.metrics = metrics if metrics is not None else Metrics()
        self.store.report_to(self.metrics)
        if interval and not self.store.client_side:
            self._start_sweeper(interval)

    def _check_store(self, store: Store) -> None:
        """Fail at start-up when the store cannot serve this shell."""

    def _start_sweeper(self, interval: float) -> None:
        """Set up this shell's sweep."""
