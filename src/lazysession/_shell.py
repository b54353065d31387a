"""What the ASGI, WSGI and Flask shells share around their store calls, so that only the
calls themselves (awaited or not) are written more than once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._cookies import CookieSettings
from ._core import DEFAULT_MAX_SIZE, Outcome, SessionRules, store_calls
from ._errors import ConfigurationError, StoreError, report_store_error
from ._expiry import DEFAULT_TOUCH_AFTER, Clock, utc_now
from ._request import InsecureCookieWarning, SkipPredicate, is_bearer_request
from ._session import Session, UnavailableSession
from .metrics import Metrics
from .stores import CookieStore, Store

if TYPE_CHECKING:
    from ._core import Exchange
    from .stores import Record, SyncStore

App = TypeVar("App")

STORE_ERROR_POLICIES = ("503", "empty")


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
        outcome.delete is None
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
        secret_key: object,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        store: Store | None = None,
        skip_persistence: SkipPredicate = is_bearer_request,
        idle_timeout: int | None = None,
        touch_after: float = DEFAULT_TOUCH_AFTER,
        max_size: int = DEFAULT_MAX_SIZE,
        on_store_error: Literal["503", "empty"] = "503",
        sweep_interval: float | None = 300,
        metrics: Metrics | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.app = app
        self.on_store_error = check_policy(on_store_error)
        self.store: Store = store if store is not None else CookieStore()
        self._check_store(self.store)
        self.skip_persistence = skip_persistence
        self.rules = SessionRules.from_options(
            secret_key=secret_key,
            store=self.store,
            cookie=CookieSettings(
                name=session_cookie,
                path=path,
                domain=domain,
                max_age=max_age,
                same_site=same_site,
                secure=https_only,
                partitioned=partitioned,
            ),
            idle_timeout=idle_timeout,
            touch_after=touch_after,
            max_size=max_size,
            clock=clock,
        )
        self._insecure = InsecureCookieWarning(https_only)
        self.metrics = metrics if metrics is not None else Metrics()
        if sweep_interval and not self.store.client_side:
            self._start_sweeper(sweep_interval)

    def _check_store(self, store: Store) -> None:
        """Fail at start-up when the store cannot serve this shell."""

    def _start_sweeper(self, interval: float) -> None:
        """Set up this shell's sweep."""
