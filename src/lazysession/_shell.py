"""The shell core: what the ASGI, WSGI and Flask shells share, written once. A shell keeps
only its header plumbing and its way to wait for the store.

Rules:
- A request's store work is a sequence of *steps*: a generator that yields store calls
  (a method's name and arguments) and gets each answer sent back in, or the call's
  :class:`StoreError` thrown in. ``reply_for`` carries out an ``Outcome`` (``_outcome``'s
  ``store_calls``) and says which headers the response gets (at once, without steps,
  when the outcome needs no store call). Each side runs steps with its own executor,
  ``run`` (blocking) or ``run_async`` (``_steps``). A load is one call: each side makes it (awaited
  or not) and hands the answer, or the error, to ``loaded`` or ``load_failed``.
- A session the store could not load stands in as the shell's *placeholder* (raises on
  use, the shell answers 503), or as an empty session that is never saved
  (``on_store_error="empty"``); one log line and ``store_errors`` either way.
- A store call that fails while the response is being decided replaces the response
  with :data:`UNAVAILABLE` (a 503 with ``Retry-After``); a session that ended or moved
  meanwhile, with :data:`INTERRUPTED` (a 409). Either is sent before any header of the
  app's has left.
- A shell checks at start-up that the store serves its side, and runs the sweep its
  way: the ASGI lifespan, or a daemon thread (:class:`BlockingShell`).
- ``on_event`` hears what happened to sessions once the store has done it, before the
  response goes out; a callback that raises is logged (its type only) and never fails
  the request. An async callback is awaited under ASGI, and run to completion in a
  fresh event loop on the blocking side. The sweep tells it the owned sessions it
  deleted (``swept``) the same way, when the store's sweep reports them (``_sweep``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ._core import SKIPPED, VARY_ONLY, Outcome, store_calls
from ._errors import (
    ConfigurationError,
    SessionInterrupted,
    StoreError,
    report_store_error,
)
from ._headers import Reply, SharedCaches
from ._headers import private_cache_control as private_cache_control
from ._identity import SessionEvent
from ._options import (
    check_policy,
    event_option,
    flag_option,
    interval_option,
    owner_cap_option,
    predicate_option,
    store_option,
)
from ._request import (
    InsecureCookieWarning,
    RequestView,
    SkipPredicate,
    is_bearer_authorization,
    is_bearer_request,
)
from ._session import Session, UnavailableSession
from ._steps import INTERRUPTED, UNAVAILABLE, Refusal, Steps, _no_store_work
from ._sweep import SweepSchedule, ThreadSweeper, takes_on_swept
from .metrics import Metrics
from .stores._cookie import CookieStore

if TYPE_CHECKING:
    from ._core import Exchange
    from .stores import Record, Store, SyncStore

logger = logging.getLogger("lazysession")

App = TypeVar("App")


# -- what every shell does around the store calls -----------------------------------------


_UNAVAILABLE_METHODS = tuple(
    name
    for name, value in vars(UnavailableSession).items()
    if value is vars(UnavailableSession)["_unavailable"]
)


S = TypeVar("S", bound=Session)


def placeholder_class(session_class: type[S], error: Callable[[], Exception]) -> type[S]:
    """A ``session_class`` that raises ``error()`` on any use, as ``UnavailableSession``
    does (the same methods), for a shell whose sessions are of another class."""

    def unavailable(self: Session, *args: Any, **kwargs: Any) -> Any:
        raise error()

    methods: dict[str, Any] = dict.fromkeys(_UNAVAILABLE_METHODS, unavailable)
    made: type[S] = type(f"Unavailable{session_class.__name__}", (session_class,), methods)
    return made


class Shell:
    """The state and the steps every shell shares, for one middleware."""

    store: Store | CookieStore
    """What ``store=`` named: a store, or the cookie mode's :class:`CookieStore`."""
    backend: Store | None
    """The store the sessions are kept in; None in cookie mode."""
    metrics: Metrics
    caches: SharedCaches
    on_store_error: str
    skip_persistence: SkipPredicate
    placeholder: type[Session] = UnavailableSession
    """Stands in for a session the store could not load (``on_store_error="503"``)."""
    _insecure: InsecureCookieWarning

    def _set_up(
        self,
        *,
        store: object,
        on_store_error: str,
        skip_persistence: SkipPredicate,
        private_reads: object,
        sweep_interval: object,
        metrics: Metrics | None,
        secure_cookie: bool,
        record_device: object = False,
        max_sessions_per_owner: object = None,
        on_event: object = None,
    ) -> None:
        """Check and keep the options every shell takes; start no sweep yet."""
        interval = interval_option("sweep_interval", sweep_interval)
        predicate_option("skip_persistence", skip_persistence)
        self.on_store_error = check_policy(on_store_error)
        self.store = store_option("store", store)
        backend = self.backend = None if isinstance(self.store, CookieStore) else self.store
        self.record_device = flag_option("record_device", record_device)
        self.max_sessions_per_owner = owner_cap_option(max_sessions_per_owner, self.store)
        self.on_event: Callable[[SessionEvent], object] | None = event_option(on_event)  # type: ignore[assignment]
        if backend is not None:
            self._check_store(backend)
        self.skip_persistence = skip_persistence
        self.caches = SharedCaches(private_reads)
        self._read_reply = Reply(None, True, self.caches.applies(True, None))
        """The reply to a request that only read its session (``VARY_ONLY``)."""
        self._insecure = InsecureCookieWarning(secure_cookie)
        self.metrics = metrics if metrics is not None else Metrics()
        if backend is not None:
            backend.report_to(self.metrics)
        self._sweep_interval = interval if interval and backend is not None else None
        self.budgeted = backend is not None and getattr(backend, "shares_budget", True)
        """The store's calls for a request share one store timeout (``StoreBudget``)."""

    def _start_sweeping(self) -> None:
        if self._sweep_interval is not None:
            self._start_sweeper(self._sweep_interval)

    def _check_store(self, store: Store) -> None:
        """Fail at start-up when the store cannot serve this shell."""

    def _refused(self, app: Any, error: ConfigurationError) -> bool:
        """Whether this shell answers ``error`` later, rather than raising it now."""
        return False

    def _start_sweeper(self, interval: float) -> None:
        """Set up this shell's sweep."""

    def _skip(self, view: RequestView) -> bool:
        """Whether ``skip_persistence`` matches the request; the default predicate is
        answered from the ``Authorization`` header the view already read."""
        predicate = self.skip_persistence
        if predicate is is_bearer_request:
            authorization = view.authorization
            return authorization is not None and is_bearer_authorization(authorization)
        return predicate(view.info())

    def loaded(self, exchange: Exchange, record: Record | None) -> Session:
        """The session the handler gets from the store's answer to ``load_key``."""
        session = exchange.loaded(record)
        if exchange.session_id is not None and not exchange.retired:
            self.metrics.loaded += 1
        return session

    def load_failed(self, exchange: Exchange, error: StoreError) -> Session:
        """The session the handler gets when the store could not load it: log once,
        count, and stand in for it."""
        self.metrics.store_errors += 1
        proceed = self.on_store_error == "empty"
        report_store_error(
            error, "serving an empty, unsaved session" if proceed else "answering 503 if used"
        )
        return exchange.unavailable(proceed=proceed, placeholder=self.placeholder)

    def reply_for(self, outcome: Outcome, view: RequestView) -> Reply | Steps[Reply | Refusal]:
        """The headers a response gets for ``outcome`` (not ``NOTHING``): at once when it
        needs no store call (most requests: a read), or the steps that make the calls and
        say so, or what to answer instead."""
        if outcome is VARY_ONLY:
            return self._read_reply
        if outcome is SKIPPED:
            self.metrics.skipped += 1
            return self._read_reply  # the same headers: nothing was written
        if not _no_store_work(outcome):
            return self._reply_steps(outcome, view)
        self.metrics.skipped += outcome.skipped
        return self._reply(outcome, outcome.set_cookie, view)

    def _reply_steps(self, outcome: Outcome, view: RequestView) -> Steps[Reply | Refusal]:
        events: list[SessionEvent] | None = [] if self.on_event is not None else None
        try:
            cookie = yield from store_calls(outcome, self.metrics, events)
        except StoreError as error:
            self.metrics.store_errors += 1
            report_store_error(error, "the response was replaced by a 503")
            return UNAVAILABLE
        except SessionInterrupted:
            return INTERRUPTED
        reply = self._reply(outcome, cookie, view)
        if events:
            reply.events = events
        return reply

    def notify(self, reply: Reply) -> None:
        """Tell ``on_event`` what the reply's store work did (the blocking side)."""
        self.tell(reply.events or ())

    def tell(self, events: Iterable[SessionEvent]) -> None:
        """Tell ``on_event`` each of ``events``, running an async callback to completion
        (the blocking side: a request's, or the sweep thread's)."""
        callback = self.on_event
        for event in events:
            try:
                result = callback(event)  # type: ignore[misc]
                if inspect.isawaitable(result):
                    _run_to_completion(result)
            except Exception as error:
                _report_callback(error)

    async def notify_async(self, reply: Reply) -> None:
        """Tell ``on_event`` what the reply's store work did, awaiting an async callback."""
        await self.tell_async(reply.events or ())

    async def tell_async(self, events: Iterable[SessionEvent]) -> None:
        """Tell ``on_event`` each of ``events``, awaiting an async callback."""
        callback = self.on_event
        for event in events:
            try:
                result = callback(event)  # type: ignore[misc]
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                _report_callback(error)

    def _reply(self, outcome: Outcome, cookie: str | None, view: RequestView) -> Reply:
        if cookie is not None and not self._insecure.done:
            self._insecure.check(view.host())
        return Reply(cookie, outcome.vary, self.caches.applies(outcome.vary, cookie))


async def _awaited(result: Any) -> None:
    await result


def _run_to_completion(awaitable: Any) -> None:
    """Run an async callback's awaitable in a fresh event loop: in this thread, or, when
    this thread already runs one (a WSGI app called from async code), in another."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_awaited(awaitable))
        return
    failed: list[BaseException] = []

    def in_thread() -> None:
        try:
            asyncio.run(_awaited(awaitable))
        except BaseException as error:
            failed.append(error)

    worker = threading.Thread(target=in_thread, name="lazysession-on-event")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]


def _report_callback(error: Exception) -> None:
    logger.error("lazysession: on_event raised %s; carrying on", type(error).__name__)


def check_sync_store(store: Store) -> SyncStore:
    """Fail at start-up, not at the first request, when a store cannot serve WSGI."""
    check = getattr(store, "check_sync", None)
    if check is not None:
        check()
    return store.sync


def check_async_store(store: Store) -> None:
    """Fail at start-up, not at the first request, when a store cannot serve ASGI."""
    check = getattr(store, "check_async", None)
    if check is not None:
        check()


class BlockingShell(Shell):
    """The blocking side (WSGI, Flask): the store's sync side, and the sweep in a daemon
    thread started by the first request and stopped by ``close()`` or at exit."""

    sync_store: SyncStore | None = None
    """The store's blocking side; None in cookie mode."""
    sweeper: ThreadSweeper | None = None

    def _check_store(self, store: Store) -> None:
        self.sync_store = check_sync_store(store)

    def _start_sweeper(self, interval: float) -> None:
        assert self.sync_store is not None  # a sweep runs only with a store
        sweep = self.sync_store.sweep
        tell = self.tell if self.on_event is not None and takes_on_swept(sweep) else None
        self.sweeper = ThreadSweeper(sweep, SweepSchedule(interval), self.metrics, tell)

    def _load(self, exchange: Exchange) -> Session:
        """The request's session, loaded if its cookie names one."""
        key = exchange.load_key
        if key is None:
            session = exchange.session
            assert session is not None
            return session
        store = self.sync_store
        assert store is not None  # only a store's session has a key to load
        try:
            record = store.read(key)
        except StoreError as error:
            return self.load_failed(exchange, error)
        return self.loaded(exchange, record)

    def _sweeping(self) -> None:
        """Start the sweep thread, if there is one and it is not running."""
        if self.sweeper is not None and not self.sweeper.running:
            self.sweeper.start()

    def close(self) -> None:
        """Stop the sweep thread."""
        if self.sweeper is not None:
            self.sweeper.stop()
