"""Flask integration: ``flask.session`` backed by lazysession, configured from ``app.config``.

    from lazysession.flask import LazySessionInterface
    app.session_interface = LazySessionInterface(store=SQLAlchemyStore("sqlite:///s.db"))

``flask.session`` is Flask's API, so it keeps Flask's semantics; the rules on top are
lazysession's (a session is stored only once written, never for Bearer requests, never
written back when only read).

Rules:
- Settings are read as Flask reads them, on every request: ``app.secret_key`` and
  ``SECRET_KEY_FALLBACKS``, the ``SESSION_COOKIE_*`` settings (through the interface's
  ``get_cookie_*`` methods, so a subclass may override them),
  ``PERMANENT_SESSION_LIFETIME``, ``SESSION_REFRESH_EACH_REQUEST`` and
  ``SESSION_PERMANENT``. The rules built from them are rebuilt only when one changes.
- Cookies are written by werkzeug, as Flask writes them: ``Expires`` with ``Max-Age``,
  no ``SameSite`` when ``SESSION_COOKIE_SAMESITE`` is None (Flask's default), a
  domain's leading dot dropped, an empty value in the cookie that deletes the session.
- Values keep their types: each top-level value goes through Flask's own
  ``TaggedJSONSerializer`` (``tag`` on write, untagged once on load), on every store, so
  tuples, ``bytes``, ``Markup``, ``UUID`` and ``datetime`` come back as they went in.
  The stored form is still JSON; pickle is never used.
- Lifetime, as in Flask: a session lives ``PERMANENT_SESSION_LIFETIME`` after its last
  write, or after its last request while ``SESSION_REFRESH_EACH_REQUEST`` is on (Flask's
  default). A refresh is an expiry-only touch, made at most once per ``touch_after`` of
  that lifetime (``touch_after=0``: on every request, as Flask does); it never rewrites
  the data and never creates a session. A request that never uses a permanent session
  still counts as a use under the refresh, as in Flask. ``idle_timeout=`` shortens the
  window; ``max_age=`` adds an absolute lifetime from creation, which Flask has not.
- ``session.permanent`` defaults to ``SESSION_PERMANENT`` (False when unset, as in
  Flask) without that default ever counting as a write. A non-permanent session gets a
  browser-session cookie.
- No secret key: the session is Flask's null session (empty when read, a RuntimeError
  on write), and one warning per app is logged; requests that never write it work.
- Flask-Session's settings are honoured (``SESSION_PERMANENT``, ``SESSION_USE_SIGNER=True``:
  the id is always signed) or refused with a ConfigurationError saying what replaces
  them; ``session.sid`` and ``app.session_interface.regenerate(session)`` work as there.
- Existing Flask or Flask-Session session cookies are not read: users sign in once more.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import flask
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.http import dump_cookie

from ._cookies import CookieSettings
from ._core import NOTHING, Exchange, SessionRules
from ._errors import (
    UNAVAILABLE_BODY,
    ConfigurationError,
    SessionInterrupted,
    SessionUnavailable,
    StoreError,
    logger,
    report_store_error,
)
from ._expiry import DEFAULT_TOUCH_AFTER, Clock, Lifetimes, Seconds, seconds_of, utc_now
from ._request import RequestInfo, SkipPredicate, is_bearer_request
from ._session import Session
from ._shell import (
    INTERRUPTED,
    UNAVAILABLE,
    Refusal,
    SharedCaches,
    check_policy,
    encrypt_option,
    fraction_option,
    interval_option,
    load_failed,
    loaded,
    seconds_option,
    store_option,
)
from ._signing import store_key
from ._sweep import SweepSchedule, ThreadSweeper
from .metrics import Metrics
from .stores import Store, SyncStore
from .wsgi import check_sync_store, persist

__all__ = ["FlaskSession", "LazySessionInterface", "SessionUnavailableError"]

NO_ABSOLUTE_LIFETIME = 100 * 365 * 24 * 60 * 60
"""Flask's sessions have no absolute lifetime; without ``max_age=`` this stands in."""

FLASK_SESSION_SETTINGS: Mapping[str, str] = {
    "SESSION_TYPE": "pass store=... (MemoryStore(), SQLAlchemyStore(...), RedisStore(...))",
    "SESSION_REDIS": "pass store=RedisStore(<that client>)",
    "SESSION_KEY_PREFIX": "pass RedisStore(prefix=...) or SQLAlchemyStore(table_name=...)",
    "SESSION_ID_LENGTH": "ids are always 256 random bits",
    "SESSION_SERIALIZATION_FORMAT": "values are Flask's tagged JSON, never msgpack or pickle",
    "SESSION_CLEANUP_N_REQUESTS": "the store is swept every sweep_interval seconds",
    "SESSION_MEMCACHED": "use RedisStore or SQLAlchemyStore (there is no memcached store)",
    "SESSION_CACHELIB": "use SQLAlchemyStore('sqlite:///sessions.db') or MemoryStore()",
    "SESSION_FILE_DIR": "use SQLAlchemyStore('sqlite:///sessions.db')",
    "SESSION_FILE_THRESHOLD": "use SQLAlchemyStore('sqlite:///sessions.db')",
    "SESSION_FILE_MODE": "use SQLAlchemyStore('sqlite:///sessions.db')",
    "SESSION_MONGODB": "use RedisStore or SQLAlchemyStore (there is no MongoDB store)",
    "SESSION_MONGODB_DB": "use RedisStore or SQLAlchemyStore (there is no MongoDB store)",
    "SESSION_MONGODB_COLLECT": "use RedisStore or SQLAlchemyStore (there is no MongoDB store)",
    "SESSION_SQLALCHEMY": "pass store=SQLAlchemyStore(db.engine)",
    "SESSION_SQLALCHEMY_ENGINE": "pass store=SQLAlchemyStore(<that engine>)",
    "SESSION_SQLALCHEMY_TABLE": "pass SQLAlchemyStore(..., table_name=...)",
    "SESSION_SQLALCHEMY_SEQUENCE": "SQLAlchemyStore needs no sequence",
    "SESSION_SQLALCHEMY_SCHEMA": "pass SQLAlchemyStore(..., metadata=MetaData(schema=...))",
    "SESSION_SQLALCHEMY_BIND_KEY": "pass store=SQLAlchemyStore(db.engines[<key>])",
    "SESSION_POSTGRESQL": "pass store=SQLAlchemyStore('postgresql+psycopg://...')",
    "SESSION_POSTGRESQL_TABLE": "pass SQLAlchemyStore(..., table_name=...)",
    "SESSION_POSTGRESQL_SCHEMA": "pass SQLAlchemyStore(..., metadata=MetaData(schema=...))",
    "SESSION_DYNAMODB": "use RedisStore or SQLAlchemyStore (there is no DynamoDB store)",
    "SESSION_DYNAMODB_TABLE": "use RedisStore or SQLAlchemyStore (there is no DynamoDB store)",
    "SESSION_DYNAMODB_TABLE_EXISTS": "use RedisStore or SQLAlchemyStore (no DynamoDB store)",
}
"""Flask-Session's settings that lazysession refuses, each with what replaces it."""


class FlaskSession(Session, SessionMixin):
    """``flask.session``: lazysession's session with Flask's ``permanent`` and ``new``,
    and Flask-Session's ``sid``. Reads mark it accessed, as Flask's own session does."""

    new = False
    cookie_keys = frozenset({"_permanent"})  # permanent or not: a different cookie
    exchange: Exchange | None = None
    permanent_default = False
    """``session.permanent`` until the handler sets it (``SESSION_PERMANENT``)."""

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    @property
    def permanent(self) -> bool:
        """Flask's flag, stored under ``_permanent``; unset, ``SESSION_PERMANENT``."""
        return bool(self.get("_permanent", self.permanent_default))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    @property
    def sid(self) -> str | None:
        """The key the store holds this session under, as Flask-Session's ``sid``: a
        SHA-256 of the cookie's random id, so it is safe to log and useless as a cookie
        (``store.sync.delete(session.sid)`` ends the session). None while the session
        is new, and with the cookie store."""
        exchange = self.exchange
        if exchange is None or exchange.session_id is None:
            return None
        return store_key(exchange.session_id)

    def is_permanent(self) -> bool:
        """``permanent`` without marking the session read."""
        return bool(dict.get(self, "_permanent", self.permanent_default))


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


class TaggedValues:
    """The core's value codec over Flask's ``TaggedJSONSerializer``: ``tag`` on the way
    out; on the way in, the untagging Flask's ``loads`` does after parsing JSON."""

    __slots__ = ("serializer",)

    def __init__(self, serializer: TaggedJSONSerializer) -> None:
        self.serializer = serializer

    def dump(self, value: Any) -> Any:
        return self.serializer.tag(value)

    def load(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.serializer.untag({key: self.load(item) for key, item in value.items()})
        if isinstance(value, list):
            return [self.load(item) for item in value]
        return value


@dataclass(frozen=True, slots=True)
class FlaskCookie(CookieSettings):
    """The session cookie as Flask writes it, through werkzeug's ``dump_cookie``."""

    flask_same_site: str | None = None
    """``SESSION_COOKIE_SAMESITE`` as given: None sends no ``SameSite`` attribute."""
    seconds: Seconds = field(default=time.time, repr=False, compare=False)

    def render(self, value: str, max_age: int | None = None) -> str:
        expires = None if max_age is None else self.seconds() + max_age
        return self._dump(value, max_age, expires)

    def render_expired(self) -> str:
        return self._dump("", 0, 0)

    def _dump(self, value: str, max_age: int | None, expires: float | None) -> str:
        return dump_cookie(
            self.name,
            value,
            max_age=max_age,
            expires=expires,
            path=self.path,
            domain=self.domain,
            secure=self.secure,
            httponly=self.httponly,
            sync_expires=False,
            max_size=0,  # size is lazysession's to check (SessionTooLarge), not a warning
            samesite=self.flask_same_site,
            partitioned=self.partitioned,
        )


def _refuse(response: flask.Response, refusal: Refusal) -> None:
    """Answer ``refusal`` instead of the view's response."""
    response.status_code = refusal.status
    response.set_data(refusal.body)
    for name, value in refusal.headers:
        response.headers[name] = value


class LazySessionInterface(SessionInterface):
    """A Flask ``SessionInterface``; ``store=None`` keeps the session in the cookie.
    ``store`` may also be a URL (``"redis://..."``, ``"sqlite:///sessions.db"``)."""

    serializer: TaggedJSONSerializer = session_json_serializer
    """Flask's own instance: tags registered on it (``register``) apply here too."""

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        skip_persistence: SkipPredicate = is_bearer_request,
        idle_timeout: int | timedelta | None = None,
        max_age: int | timedelta | None = None,
        touch_after: float = DEFAULT_TOUCH_AFTER,
        on_store_error: Literal["503", "empty"] = "503",
        sweep_interval: float | timedelta | None = 300,
        metrics: Metrics | None = None,
        encrypt: bool = False,
        private_reads: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        self.on_store_error = check_policy(on_store_error)
        self.encrypt = encrypt_option(encrypt)
        self.caches = SharedCaches(private_reads)
        interval = interval_option("sweep_interval", sweep_interval)
        self.idle_timeout = seconds_option("idle_timeout", idle_timeout)
        self.max_age = seconds_option("max_age", max_age)
        self.touch_after = fraction_option("touch_after", touch_after)
        self.store: Store = store_option("store", store)
        self.sync_store: SyncStore = check_sync_store(self.store)
        self.skip_persistence = skip_persistence
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()
        self.store.report_to(self.metrics)
        self.sweeper: ThreadSweeper | None = None
        if interval and not self.store.client_side:
            schedule = SweepSchedule(interval)
            self.sweeper = ThreadSweeper(self.sync_store.sweep, schedule, self.metrics)

    # -- settings, read as Flask reads them ------------------------------------------------

    def settings(self, app: flask.Flask) -> tuple[Any, ...]:
        """Everything the rules are built from, read afresh (it is cheap to compare)."""
        config = app.config
        return (
            app.secret_key,
            tuple(config.get("SECRET_KEY_FALLBACKS") or ()),
            self.get_cookie_name(app),
            self.get_cookie_domain(app),
            self.get_cookie_path(app),
            self.get_cookie_httponly(app),
            self.get_cookie_secure(app),
            self.get_cookie_samesite(app),
            self.get_cookie_partitioned(app),
            app.permanent_session_lifetime,
            bool(config.get("SESSION_REFRESH_EACH_REQUEST", True)),
        )

    def rules(self, app: flask.Flask) -> SessionRules | None:
        """The rules for ``app``'s current settings; None when it has no secret key."""
        settings = self.settings(app)
        cached: tuple[tuple[Any, ...], SessionRules | None] | None = app.extensions.get(
            "lazysession"
        )
        if cached is not None and cached[0] == settings:
            return cached[1]
        rules = self._build_rules(app, settings)
        app.extensions["lazysession"] = (settings, rules)
        return rules

    def _build_rules(self, app: flask.Flask, settings: tuple[Any, ...]) -> SessionRules | None:
        secret, fallbacks, name, domain, path, httponly, secure, same_site, partitioned = settings[
            :9
        ]
        lifetime, refresh = settings[9:]
        _refuse_flask_session_settings(app.config)
        if not secret:
            if not app.extensions.get("lazysession.warned"):
                app.extensions["lazysession.warned"] = True
                logger.warning(
                    "lazysession: Flask app %r has no SECRET_KEY, so its session is Flask's "
                    "null session (empty when read, an error when written); set "
                    "app.config['SECRET_KEY']",
                    app.name,
                )
            return None
        window = _lifetime_seconds(lifetime)
        if self.idle_timeout is not None:
            window = min(window, self.idle_timeout)
        flask_same_site = _same_site(same_site)
        cookie = FlaskCookie(
            name=name,
            path=path,
            domain=domain,
            max_age=window,
            # the attribute itself comes from flask_same_site; this one is checked
            same_site="none" if flask_same_site == "None" else "lax",
            secure=bool(secure),
            partitioned=bool(partitioned),
            httponly=bool(httponly),
            flask_same_site=flask_same_site,
            seconds=seconds_of(self.clock),
        )
        lifetimes = Lifetimes(
            absolute=self.max_age if self.max_age is not None else NO_ABSOLUTE_LIFETIME,
            idle=window,
            # Without the refresh, a read never moves the expiry: a touch would be due
            # only once the whole window had passed, when the session is gone.
            touch_after=self.touch_after if refresh else 1.0,
        )
        return SessionRules(
            secret_key=[secret, *fallbacks],
            cookie=cookie,
            store=self.store,
            clock=self.clock,
            lifetimes=lifetimes,
            session_class=FlaskSession,
            value_codec=TaggedValues(self.serializer),
            encrypt=self.encrypt,
        )

    # -- Flask's SessionInterface ------------------------------------------------------------

    def open_session(self, app: flask.Flask, request: flask.Request) -> FlaskSession | None:
        rules = self.rules(app)
        if rules is None:
            return None  # Flask makes its null session
        if self.sweeper is not None and not self.sweeper.running:
            self.sweeper.start()
        exchange = rules.begin(request.headers.get("Cookie"))
        key = exchange.load_key
        loaded = exchange.session if key is None else self._load(exchange, key)
        assert isinstance(loaded, FlaskSession)
        loaded.exchange = exchange
        loaded.new = exchange.session_id is None and not loaded
        loaded.permanent_default = bool(app.config.get("SESSION_PERMANENT", False))
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
        permanent = session.is_permanent()
        if (
            permanent
            and session.exchange.had_cookie
            and not isinstance(session, _UnavailableFlaskSession)
            and app.config.get("SESSION_REFRESH_EACH_REQUEST", True)
        ):
            session.accessed = True  # Flask refreshes a permanent session on every request
        outcome = session.exchange.finish(
            response.status_code, self._skip, flask.request, persistent_cookie=permanent
        )
        if outcome is NOTHING:
            return
        try:
            cookie = persist(self.sync_store, outcome, self.metrics)
        except StoreError as error:
            self.metrics.store_errors += 1
            report_store_error(error, "the response was replaced by a 503")
            _refuse(response, UNAVAILABLE)
            return
        except SessionInterrupted:
            _refuse(response, INTERRUPTED)
            return
        if cookie is not None:
            response.headers.add("Set-Cookie", cookie)
        if outcome.vary:
            response.vary.add("Cookie")
        if self.caches.applies(outcome.vary, cookie):
            private = self.caches.rewrite(response.headers.getlist("Cache-Control"))
            if private is not None:
                response.headers["Cache-Control"] = private

    def _skip(self, request: flask.Request) -> bool:
        return self.skip_persistence(flask_request_info(request))

    # -- Flask-Session's API -----------------------------------------------------------------

    def regenerate(self, session: SessionMixin) -> None:
        """Flask-Session's ``regenerate``: a new id for ``session``, the old one deleted
        (``session.regenerate()`` does the same)."""
        if not isinstance(session, FlaskSession):
            raise TypeError("regenerate() takes the request's flask.session")
        session.regenerate()

    def close(self) -> None:
        """Stop the sweep thread."""
        if self.sweeper is not None:
            self.sweeper.stop()


def _lifetime_seconds(lifetime: object) -> int:
    seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 1:
        raise ConfigurationError(
            f"PERMANENT_SESSION_LIFETIME={lifetime!r}: expected a timedelta or seconds, "
            "one second or more"
        )
    return int(seconds)


def _same_site(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.title() in ("Strict", "Lax", "None"):
        return value.title()
    raise ConfigurationError(
        f"SESSION_COOKIE_SAMESITE={value!r}: expected 'Strict', 'Lax', 'None' or None"
    )


def _refuse_flask_session_settings(config: Mapping[str, Any]) -> None:
    found = [name for name in FLASK_SESSION_SETTINGS if name in config]
    if config.get("SESSION_USE_SIGNER") is False:
        found.append("SESSION_USE_SIGNER")
    if not found:
        return
    advice = {**FLASK_SESSION_SETTINGS, "SESSION_USE_SIGNER": "the session id is always signed"}
    lines = "; ".join(f"{name}: {advice[name]}" for name in found)
    raise ConfigurationError(
        f"Flask-Session settings that lazysession does not read are set; remove them. {lines}"
    )
