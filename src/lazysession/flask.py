"""Flask integration: ``flask.session`` backed by lazysession, configured from ``app.config``.

    from lazysession.flask import LazySessionInterface
    app.session_interface = LazySessionInterface(store=SQLAlchemyStore("sqlite:///s.db"))

Flask's own semantics are kept where apps rely on them: ``SECRET_KEY`` (and
``SECRET_KEY_FALLBACKS`` for rotation), the ``SESSION_COOKIE_*`` settings,
``PERMANENT_SESSION_LIFETIME``, and ``session.permanent`` (a non-permanent session gets a
browser-session cookie; server side it still expires after the lifetime). The rules are
lazysession's: a session is stored only once written, never for Bearer requests, and
never written back when only read. ``SESSION_COOKIE_SAMESITE=None`` (Flask's default)
is sent as ``lax``. Existing Flask session cookies are not read: users sign in once more.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import flask
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.exceptions import ServiceUnavailable

from ._cookies import CookieSettings
from ._core import NOTHING, Exchange, SessionRules
from ._errors import (
    UNAVAILABLE_BODY,
    ConfigurationError,
    SessionUnavailable,
    StoreError,
    report_store_error,
)
from ._expiry import Clock, Lifetimes, utc_now
from ._request import RequestInfo, SkipPredicate, is_bearer_request
from ._session import Session
from ._shell import check_policy, load_failed, loaded
from ._sweep import SweepSchedule, ThreadSweeper
from .metrics import Metrics
from .stores import CookieStore, Store, SyncStore
from .wsgi import check_sync_store, persist

__all__ = ["FlaskSession", "LazySessionInterface", "SessionUnavailableError"]


class FlaskSession(Session, SessionMixin):
    """``flask.session``: lazysession's session with Flask's ``permanent`` and ``new``.
    Reads mark it accessed, as Flask's own session does."""

    new = False
    cookie_keys = frozenset({"_permanent"})  # permanent or not: a different cookie
    exchange: Exchange | None = None

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)


class SessionUnavailableError(SessionUnavailable, ServiceUnavailable):
    """Raised on use of a session the store could not load; Flask answers 503."""

    description = UNAVAILABLE_BODY.decode().strip()


class _UnavailableFlaskSession(FlaskSession):
    def _unavailable(self, *args: Any, **kwargs: Any) -> Any:
        raise SessionUnavailableError()

    mark_accessed = mark_modified = _unavailable
    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = __len__ = _unavailable
    get = keys = values = items = pop = popitem = setdefault = update = clear = _unavailable
    regenerate = invalidate = set_lifetime = pin = _unavailable


def flask_request_info(request: flask.Request) -> RequestInfo:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return RequestInfo(method=request.method, path=request.path, headers=headers)


class LazySessionInterface(SessionInterface):
    """A Flask ``SessionInterface``; ``store=None`` keeps the session in the cookie."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        skip_persistence: SkipPredicate = is_bearer_request,
        idle_timeout: int | None = None,
        on_store_error: Literal["503", "empty"] = "503",
        sweep_interval: float | None = 300,
        metrics: Metrics | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.on_store_error = check_policy(on_store_error)
        self.idle_timeout = idle_timeout
        self.store: Store = store if store is not None else CookieStore()
        self.sync_store: SyncStore = check_sync_store(self.store)
        self.skip_persistence = skip_persistence
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()
        self.sweeper: ThreadSweeper | None = None
        if sweep_interval and not self.store.client_side:
            schedule = SweepSchedule(sweep_interval)
            self.sweeper = ThreadSweeper(self.sync_store.sweep, schedule, self.metrics)

    def rules(self, app: flask.Flask) -> SessionRules:
        """The rules for ``app``, built from its config on first use."""
        rules: SessionRules | None = app.extensions.get("lazysession")
        if rules is None:
            rules = app.extensions["lazysession"] = self._build_rules(app)
        return rules

    def _build_rules(self, app: flask.Flask) -> SessionRules:
        config = app.config
        if not config.get("SECRET_KEY"):
            raise ConfigurationError("set app.config['SECRET_KEY'] to use lazysession's sessions")
        keys = [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or [])]
        lifetime = config.get("PERMANENT_SESSION_LIFETIME", timedelta(days=31))
        seconds = int(lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime)
        cookie = CookieSettings(
            name=config.get("SESSION_COOKIE_NAME", "session"),
            path=self.get_cookie_path(app),
            domain=self.get_cookie_domain(app),
            max_age=seconds,
            same_site=(self.get_cookie_samesite(app) or "lax").lower(),  # type: ignore[arg-type]
            secure=self.get_cookie_secure(app),
            partitioned=bool(config.get("SESSION_COOKIE_PARTITIONED", False)),
            httponly=self.get_cookie_httponly(app),
        )
        return SessionRules(
            secret_key=keys,
            cookie=cookie,
            store=self.store,
            clock=self.clock,
            lifetimes=Lifetimes(absolute=seconds, idle=self.idle_timeout),
            session_class=FlaskSession,
        )

    def open_session(self, app: flask.Flask, request: flask.Request) -> FlaskSession:
        if self.sweeper is not None and not self.sweeper.running:
            self.sweeper.start()
        exchange = self.rules(app).begin(request.headers.get("Cookie"))
        key = exchange.load_key
        loaded = exchange.session if key is None else self._load(exchange, key)
        assert isinstance(loaded, FlaskSession)
        loaded.exchange = exchange
        loaded.new = exchange.session_id is None and not loaded
        return loaded

    def _load(self, exchange: Exchange, key: str) -> Session:
        try:
            record = self.sync_store.read(key)
        except StoreError as error:
            return load_failed(
                exchange, error, self.on_store_error, self.metrics, _UnavailableFlaskSession
            )
        return loaded(exchange, record, self.metrics)

    def save_session(
        self, app: flask.Flask, session: SessionMixin, response: flask.Response
    ) -> None:
        if not isinstance(session, FlaskSession) or session.exchange is None:
            return
        outcome = session.exchange.finish(
            response.status_code,
            self._skip,
            flask.request,
            persistent_cookie=bool(dict.get(session, "_permanent", False)),  # not a "read"
        )
        if outcome is NOTHING:
            return
        try:
            cookie = persist(self.sync_store, outcome, self.metrics)
        except StoreError as error:
            self.metrics.store_errors += 1
            report_store_error(error, "the response was replaced by a 503")
            response.status_code = 503
            response.set_data(UNAVAILABLE_BODY)
            response.mimetype = "text/plain"
            response.headers["Retry-After"] = "5"
            return
        if cookie is not None:
            response.headers.add("Set-Cookie", cookie)
        if outcome.vary:
            response.vary.add("Cookie")

    def _skip(self, request: flask.Request) -> bool:
        return self.skip_persistence(flask_request_info(request))

    def close(self) -> None:
        """Stop the sweep thread."""
        if self.sweeper is not None:
            self.sweeper.stop()
