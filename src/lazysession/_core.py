"""The rules of one request's session, free of I/O: both shells (ASGI, WSGI) do only
header plumbing and store calls around them.

Rules:
1. A request without a session cookie costs no store I/O. Its session starts empty, and
   an id is minted only when the handler leaves something in it.
2. Only a modified session is written; one that was only read is never written back.
3. A validly signed id the store does not know (expired, swept, deleted) is never
   adopted: the request gets a fresh session, and a write mints a new id.
4. A request that ``skip_persistence`` matches sees the session its cookie names, but
   nothing it does is saved or deleted and no ``Set-Cookie`` is sent.
5. A response with a 5xx status persists nothing: a failed handler may have changed
   the session halfway.
6. A session left empty is deleted from the store and its cookie expired.
7. ``Vary: Cookie`` goes out whenever the session was read or written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from . import _json
from ._cookies import CookieSettings, cookie_values
from ._expiry import DEFAULT_LIFETIME, Clock
from ._session import Changes, Session
from ._signing import DataSigner, IdSigner, SecretKeys, new_session_id, store_key
from .stores import CookieStore, Store

Request = TypeVar("Request")


@dataclass(frozen=True, slots=True)
class Write:
    """Store the session under ``session_id`` until ``expires_at``."""

    session_id: str
    data: Session
    expires_at: datetime

    @property
    def changes(self) -> Changes:
        """Only what this request changed, for stores that merge onto the stored copy."""
        return self.data.changes()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the shell must do before the response headers go out, in this order:
    delete, write, then add the headers."""

    delete: str | None = None
    write: Write | None = None
    set_cookie: str | None = None
    vary: bool = False


NOTHING = Outcome()
VARY_ONLY = Outcome(vary=True)


class SessionRules:
    """Configuration, checked once; ``begin`` starts the rules for one request."""

    __slots__ = (
        "_codec",
        "_data_signer",
        "_id_signer",
        "clock",
        "cookie",
        "lifetime",
        "server_side",
        "session_class",
    )

    def __init__(
        self,
        *,
        secret_key: object,
        cookie: CookieSettings,
        store: Store,
        clock: Clock,
        lifetime: int | None = None,
        session_class: type[Session] = Session,
    ) -> None:
        keys = SecretKeys(secret_key)
        self.session_class = session_class
        self.cookie = cookie
        self.clock = clock
        self.server_side = not store.client_side
        if lifetime is None:
            lifetime = cookie.max_age if cookie.max_age is not None else DEFAULT_LIFETIME
        self.lifetime = timedelta(seconds=lifetime)
        self._id_signer = IdSigner(keys)
        self._data_signer = DataSigner(keys, clock)
        self._codec = store if isinstance(store, CookieStore) else None

    def expiry(self) -> datetime:
        return self.clock() + self.lifetime

    def begin(self, cookie_header: str | None) -> Exchange:
        """Read the request's cookie. A server-side session still has to be loaded:
        ``exchange.load_key`` says under which key."""
        if not cookie_header:
            return Exchange(self, None, False, self.session_class())
        values = cookie_values(cookie_header, self.cookie.name)
        if not values:
            return Exchange(self, None, False, self.session_class())
        if self.server_side:
            for value in values:
                session_id = self._id_signer.unsign(value)
                if session_id is not None:
                    exchange = Exchange(self, session_id, True, None)
                    exchange.signed_id = value
                    return exchange
        else:
            for value in values:
                data = self._data_signer.unsign(value, self.cookie.max_age)
                if data is not None:
                    return Exchange(self, None, True, self.session_class(data))
        return Exchange(self, None, True, self.session_class())


class Exchange:
    """One request's session, from the cookie it came with to the outcome it leaves."""

    __slots__ = ("_rules", "had_cookie", "load_key", "session", "session_id", "signed_id")

    def __init__(
        self,
        rules: SessionRules,
        session_id: str | None,
        had_cookie: bool,
        session: Session | None,
    ) -> None:
        self._rules = rules
        self.session_id = session_id
        self.had_cookie = had_cookie
        self.session = session
        self.signed_id: str | None = None
        self.load_key: str | None = None
        """The store key to load before the handler runs, or None: nothing to load."""
        if session is None and session_id is not None:
            self.load_key = store_key(session_id)

    def loaded(self, data: dict[str, Any] | None) -> Session:
        """Hand in what the store returned for ``load_key``."""
        self.load_key = None
        if data is None:
            self.session_id = self.signed_id = None  # rule 3: an unknown id is never adopted
            self.session = self._rules.session_class()
        else:
            self.session = self._rules.session_class(data)
        return self.session

    def finish(
        self,
        status: int,
        skip: Callable[[Request], bool],
        request: Request,
        *,
        persistent_cookie: bool = True,
    ) -> Outcome:
        """Decide what to persist. ``skip(request)`` runs the ``skip_persistence``
        predicate, only when there is something to persist. ``persistent_cookie=False``
        sends a browser-session cookie (Flask's non-permanent sessions)."""
        session = self.session
        if session is None or not session.accessed:
            return NOTHING
        if not session.modified or status >= 500 or skip(request):
            return VARY_ONLY
        rules = self._rules
        if not rules.server_side:
            return self._finish_in_cookie(session, persistent_cookie)
        if session:
            session_id = self.session_id
            if session_id is None:
                session_id = new_session_id()
                signed = rules._id_signer.sign(session_id)
            else:
                signed = self.signed_id or rules._id_signer.sign(session_id)
            write = Write(store_key(session_id), session, rules.expiry())
            cookie = rules.cookie.render(signed, persistent=persistent_cookie)
            return Outcome(write=write, set_cookie=cookie, vary=True)
        if self.session_id is not None:
            return Outcome(
                delete=store_key(self.session_id),
                set_cookie=rules.cookie.render_expired(),
                vary=True,
            )
        return self._expire_cookie_if_sent()

    def _finish_in_cookie(self, session: Session, persistent: bool) -> Outcome:
        rules = self._rules
        if not session:
            return self._expire_cookie_if_sent()
        value = rules._data_signer.sign(_json.dumps(session))
        assert rules._codec is not None
        rules._codec.check_size(rules.cookie.name, value)
        return Outcome(set_cookie=rules.cookie.render(value, persistent=persistent), vary=True)

    def _expire_cookie_if_sent(self) -> Outcome:
        if self.had_cookie:
            return Outcome(set_cookie=self._rules.cookie.render_expired(), vary=True)
        return VARY_ONLY
