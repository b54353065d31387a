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
  default). On a server store a refresh is an expiry-only touch, made at most once per
  ``touch_after`` of that lifetime (``touch_after=0``: on every request); on the cookie
  store, where it calls no store, on every request, as Flask does. It never rewrites the
  data, never creates a session, and never touches a non-permanent cookie-store session.
  A request that never uses a permanent session still counts as a use under the
  refresh, as in Flask. ``idle_timeout=`` shortens the window; ``max_age=`` adds an
  absolute lifetime from creation, which Flask has not.
- A changed ``SESSION_COOKIE_*`` attribute reaches each browser with its next write, as
  in Flask: a server-side session keeps a digest of the attributes its cookie was set
  with (``Meta.mark``), and a write re-sends the cookie when they differ.
- ``session.modified = True`` after an in-place change (Flask's idiom) saves it: every
  key counts as changed, merged onto other tabs' writes on every store.
- A generator body (``response.is_streamed``, not passed through) may read the session
  after this hook ran: a request with a session cookie then gets ``Vary: Cookie`` (and
  ``private``) whether or not it reads it.
- ``session.permanent`` defaults to ``SESSION_PERMANENT`` (False when unset, as in
  Flask) without that default ever counting as a write. A non-permanent session gets a
  browser-session cookie.
- No secret key: the session is Flask's null session (empty when read, a RuntimeError
  on write), and one warning per app is logged; requests that never write it work.
- Flask-Session's settings are honoured (``SESSION_PERMANENT``, ``SESSION_USE_SIGNER=True``:
  the id is always signed) or refused with a ConfigurationError saying what replaces
  them; ``session.sid`` and ``app.session_interface.regenerate(session)`` work as there.
- A session the store could not load raises ``SessionUnavailableError`` on use, which
  Flask answers with the 503 every shell sends (``Retry-After`` included); a failed save
  replaces the response with that 503 (or the 409 of a session that ended meanwhile).
- Existing Flask or Flask-Session session cookies are not read: users sign in once more.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import flask
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer

from . import _defaults
from ._core import NOTHING, SessionRules
from ._defaults import StoreErrorPolicy
from ._errors import (
    logger,
)
from ._expiry import Clock, Lifetimes, seconds_of, utc_now
from ._flask_config import (
    NO_ABSOLUTE_LIFETIME,
    FlaskCookie,
    TaggedValues,
    lifetime_seconds,
    refuse_flask_session_settings,
    samesite_setting,
)
from ._flask_session import (
    RESPONSE_HEADERS,
    FlaskSession,
    FlaskView,
    SessionUnavailableError,
    UnavailableFlaskSession,
    refuse,
)
from ._headers import Reply, add_session_headers
from ._identity import SessionEvent
from ._options import seconds_option
from ._request import SkipPredicate, is_bearer_request
from ._shell import BlockingShell
from ._shell_options import set_up
from ._steps import Refusal, run
from .metrics import Metrics
from .stores import CookieStore, Store

__all__ = ["FlaskSession", "LazySessionInterface", "SessionUnavailableError"]


class LazySessionInterface(BlockingShell, SessionInterface):
    """A Flask ``SessionInterface``; ``store=None`` keeps the session in the cookie.
    ``store`` may also be a URL (``"redis://..."``, ``"sqlite:///sessions.db"``)."""

    placeholder = UnavailableFlaskSession

    serializer: TaggedJSONSerializer = session_json_serializer
    """Flask's own instance: tags registered on it (``register``) apply here too."""

    def __init__(
        self,
        store: Store | CookieStore | str | None = None,
        *,
        skip_persistence: SkipPredicate = is_bearer_request,
        idle_timeout: int | timedelta | None = None,
        max_age: int | timedelta | None = None,
        touch_after: float = _defaults.TOUCH_AFTER,
        on_store_error: StoreErrorPolicy = _defaults.ON_STORE_ERROR,
        sweep_interval: float | timedelta | None = _defaults.SWEEP_INTERVAL,
        metrics: Metrics | None = None,
        encrypt: bool = False,
        private_reads: bool = True,
        record_device: bool = False,
        max_sessions_per_owner: int | None = None,
        on_event: Callable[[SessionEvent], object] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.max_age = seconds_option("max_age", max_age)
        # SESSION_COOKIE_SECURE is Flask's own: no warning of ours
        shared = set_up(self, locals(), secure_cookie=True)
        self.encrypt, self.clock = shared["encrypt"], shared["clock"]
        self.idle_timeout, self.touch_after = shared["idle_timeout"], shared["touch_after"]
        self._start_sweeping()

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
        refuse_flask_session_settings(app.config)
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
        window = lifetime_seconds(lifetime)
        if self.idle_timeout is not None:
            window = min(window, self.idle_timeout)
        flask_same_site = samesite_setting(same_site)
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
            # (the cookie store's refresh calls no store: on every request, as in Flask)
            touch_after=(0.0 if self.backend is None else self.touch_after) if refresh else 1.0,
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
            record_device=self.record_device,
            max_sessions_per_owner=self.max_sessions_per_owner,
            cookie_mark=None if self.backend is None else cookie.mark(),
        )

    # -- Flask's SessionInterface ------------------------------------------------------------

    def open_session(self, app: flask.Flask, request: flask.Request) -> FlaskSession | None:
        """Flask's hook: the request's session, loaded from the store when its cookie names one."""
        rules = self.rules(app)
        if rules is None:
            return None  # Flask makes its null session
        self._sweeping()
        view = FlaskView(request)
        exchange = rules.begin(view.cookie)
        with view.spending():
            session = self._load(exchange)
        assert isinstance(session, FlaskSession)
        session.exchange = exchange
        session.view = view
        session.new = exchange.session_id is None and not session
        session.permanent_default = default = bool(app.config.get("SESSION_PERMANENT", False))
        session.permanent_loaded = bool(dict.get(session, "_permanent", default))
        return session

    def save_session(
        self, app: flask.Flask, session: SessionMixin, response: flask.Response
    ) -> None:
        """Flask's hook: carry out what the request did to its session and add its
        headers, or turn the response into the documented 409/503."""
        if not isinstance(session, FlaskSession) or session.exchange is None:
            return
        view = session.view
        assert view is not None
        permanent = session.is_permanent()
        if (
            permanent
            and session.exchange.had_cookie
            and not isinstance(session, UnavailableFlaskSession)
            and app.config.get("SESSION_REFRESH_EACH_REQUEST", True)
        ):
            session.accessed = True  # Flask refreshes a permanent session on every request
        outcome = session.exchange.finish(
            response.status_code,
            self._skip,
            view,
            persistent_cookie=permanent,
            user_agent=view.user_agent,
            # a generator body runs after this hook, and may still read the session; a
            # file Flask passes through (send_file) cannot
            streaming=response.is_streamed and not response.direct_passthrough,
        )
        if outcome is NOTHING:
            return
        reply = self.reply_for(outcome, view)
        if not isinstance(reply, Reply):
            with view.spending():
                answer = run(reply, self.sync_store)
            if isinstance(answer, Refusal):
                refuse(response, answer)
                return
            reply = answer
            if reply.events:
                self.notify(reply)
        add_session_headers(RESPONSE_HEADERS, response, reply, self.caches)

    # -- Flask-Session's API -----------------------------------------------------------------

    def regenerate(self, session: SessionMixin) -> None:
        """Flask-Session's ``regenerate``: a new id for ``session``, the old one deleted
        (``session.regenerate()`` does the same)."""
        if not isinstance(session, FlaskSession):
            raise TypeError("regenerate() takes the request's flask.session")
        session.regenerate()
