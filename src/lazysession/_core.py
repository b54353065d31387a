"""The rules of one request's session, free of I/O: both shells (ASGI, WSGI) do only
header plumbing and store calls around them.

Rules:
1. A request without a session cookie costs no store I/O. Its session starts empty, and
   an id is minted only when the handler leaves something in it.
2. Only a modified session is written; one that was only read is never written back
   (under an idle timeout it may be *touched*: its expiry moves, its data is not sent).
3. A validly signed id the store does not know (expired, swept, deleted) is never
   adopted: the request gets a fresh session, and a write mints a new id.
4. A request that ``skip_persistence`` matches sees the session its cookie names, but
   nothing it does is saved, touched or deleted, and no ``Set-Cookie`` is sent.
5. A response with a 5xx status persists nothing: a failed handler may have changed
   the session halfway.
6. A session left empty, or invalidated, is deleted from the store and its cookie
   expired; a regenerated one moves to a new id and the old id is deleted.
7. ``Vary: Cookie`` goes out whenever the session was read or written.
8. Nothing is written that could not be read back: a value JSON cannot hold, or a session
   past its size limit, raises before any store I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from . import _json
from ._cookies import CookieSettings, cookie_values
from ._errors import SessionTooLarge
from ._expiry import (
    DEFAULT_LIFETIME,
    META_KEY,
    Clock,
    Lifetimes,
    Meta,
    expires,
    from_timestamp,
    hard_expiry,
    needs_touch,
    seconds_of,
)
from ._session import Changes, Session, UnavailableSession
from ._signing import DataSigner, IdSigner, SecretKeys, new_session_id, store_key
from .stores import CookieStore, Record, Store

Request = TypeVar("Request")

DEFAULT_MAX_SIZE = 64 * 1024
"""Bytes of JSON a server-side session may hold unless ``max_size`` says otherwise."""


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Write:
    """Store ``data`` under ``session_id`` until ``expires_at``."""

    session_id: str
    data: dict[str, Any]
    expires_at: datetime
    changes: Changes
    """Only what this request changed, for stores that merge onto the stored copy."""
    created: bool = False
    """A session id minted by this request (a new or regenerated session)."""

    @property
    def merge(self) -> bool:
        """Merge ``changes`` onto the stored copy (an existing session), rather than
        store ``data`` whole (a new, regenerated or cleared session)."""
        return not self.changes.replace


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Touch:
    """Move the expiry of the session under ``session_id``; its data is unchanged."""

    session_id: str
    expires_at: datetime


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Outcome:
    """What the shell must do before the response headers go out, in this order:
    delete, write or touch, then add the headers."""

    delete: str | None = None
    write: Write | None = None
    touch: Touch | None = None
    set_cookie: str | None = None
    vary: bool = False
    skipped: bool = False
    """``skip_persistence`` matched: something would have been persisted, and was not."""


NOTHING = Outcome()
VARY_ONLY = Outcome(vary=True)
SKIPPED = Outcome(vary=True, skipped=True)


class SessionRules:
    """Configuration, checked once; ``begin`` starts the rules for one request."""

    __slots__ = (
        "_codec",
        "_data_signer",
        "_id_signer",
        "clock",
        "cookie",
        "lifetimes",
        "max_size",
        "now",
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
        lifetimes: Lifetimes | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        session_class: type[Session] = Session,
    ) -> None:
        keys = SecretKeys(secret_key)
        self.cookie = cookie
        self.clock = clock
        self.now = seconds_of(clock)
        self.server_side = not store.client_side
        if lifetimes is None:
            lifetimes = Lifetimes() if cookie.max_age is None else Lifetimes(cookie.max_age)
        self.lifetimes = lifetimes
        self.max_size = max_size
        self.session_class = session_class
        self._id_signer = IdSigner(keys)
        self._data_signer = DataSigner(keys, clock)
        self._codec = store if isinstance(store, CookieStore) else None

    @classmethod
    def from_options(
        cls,
        *,
        secret_key: object,
        store: Store,
        cookie: CookieSettings,
        idle_timeout: int | None,
        touch_after: float,
        max_size: int,
        clock: Clock,
    ) -> SessionRules:
        """The rules for the middleware's keyword options, the same for ASGI and WSGI."""
        lifetimes = Lifetimes(
            absolute=cookie.max_age if cookie.max_age is not None else DEFAULT_LIFETIME,
            idle=idle_timeout,
            touch_after=touch_after,
        )
        return cls(
            secret_key=secret_key,
            cookie=cookie,
            store=store,
            clock=clock,
            lifetimes=lifetimes,
            max_size=max_size,
        )

    def exchange_for(self, session: Session) -> Exchange:
        """The exchange of a request that came without a session cookie, made once its
        handler has touched the (new, empty) session."""
        return Exchange(self, None, False, session)

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
                found = self._id_signer.verify(value)
                if found is not None:
                    exchange = Exchange(self, found[0], True, None, found[2])
                    exchange.signed_id = value if found[1] else None  # re-sign retired keys
                    return exchange
        else:
            now = self.now()
            for value in values:
                unsigned = self._data_signer.unsign(value)
                if unsigned is None:
                    continue
                data, signed_at = unsigned
                meta = Meta.from_json(data.pop(META_KEY, None), signed_at)
                stored = expires(meta, signed_at, self.lifetimes)
                if stored <= now:
                    break  # expired: the request starts afresh
                exchange = Exchange(self, None, True, self.session_class(data))
                exchange._adopt(meta, stored)
                return exchange
        return Exchange(self, None, True, self.session_class())

    def cookie_max_age(self, expiry: float, now: float, persistent: bool) -> int | None:
        """Seconds the browser should keep the cookie: until the session expires, or,
        for a browser-session cookie, no ``Max-Age`` at all."""
        if not persistent or self.cookie.max_age is None:
            return None
        return max(1, math.ceil(expiry - now))


class Exchange:
    """One request's session, from the cookie it came with to the outcome it leaves."""

    __slots__ = (
        "_key",
        "_rules",
        "_version",
        "ephemeral",
        "had_cookie",
        "load_key",
        "session",
        "session_id",
        "signed_id",
        "stored_expiry",
    )

    def __init__(
        self,
        rules: SessionRules,
        session_id: str | None,
        had_cookie: bool,
        session: Session | None,
        key: str | None = None,
    ) -> None:
        """``session`` None: the session under store ``key`` is still to be loaded."""
        self._rules = rules
        self.session_id = session_id
        self.had_cookie = had_cookie
        self.session = session
        self.signed_id: str | None = None
        self.stored_expiry: float | None = None
        """When the loaded session expires as stored, for the idle-timeout rule, the one
        that looks at it (a store's record is converted only when that rule is on)."""
        self.ephemeral = False
        self.load_key: str | None = key
        """The store key to load before the handler runs, or None: nothing to load."""
        self._key: str | None = key
        self._version: object = None

    def _adopt(self, meta: Meta, stored_expiry: float | None) -> None:
        assert self.session is not None
        self.session._meta = meta
        self.stored_expiry = stored_expiry

    def loaded(self, record: Record | None) -> Session:
        """Hand in what the store returned for ``load_key``."""
        self.load_key = None
        rules = self._rules
        if record is not None:
            self._version = record.version
            data = record.data  # a fresh dict from the store's JSON: ours to change
            now = rules.now()
            meta = Meta.from_json(data.pop(META_KEY, None), now)
            lifetimes = rules.lifetimes
            if hard_expiry(meta, lifetimes) > now:
                self.session = rules.session_class(data)
                idle = lifetimes.idle is not None
                self._adopt(meta, record.expires_at.timestamp() if idle else None)
                return self.session
        self.session_id = self.signed_id = None  # rule 3: an unknown id is never adopted
        self.session = rules.session_class()
        return self.session

    def unavailable(
        self, *, proceed: bool, placeholder: type[Session] = UnavailableSession
    ) -> Session:
        """The store failed to load the session. ``proceed``: the handler gets an empty
        session that is never saved; otherwise a ``placeholder`` that raises on use."""
        self.load_key = None
        self.ephemeral = True
        self.session = self._rules.session_class() if proceed else placeholder()
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
        if session is None or self.ephemeral:
            return VARY_ONLY if session is not None and session.accessed else NOTHING
        if not session.accessed:
            return NOTHING
        if status >= 500:
            return VARY_ONLY
        if not session.modified:
            return self._touch(session, skip, request, persistent_cookie)
        if skip(request):
            return SKIPPED
        return self._write(session, persistent_cookie)

    def _touch(
        self, session: Session, skip: Callable[[Request], bool], request: Request, persistent: bool
    ) -> Outcome:
        rules = self._rules
        meta, stored = session._meta, self.stored_expiry
        if meta is None or stored is None or rules.lifetimes.idle is None:
            return VARY_ONLY  # no idle timeout: reads never move the expiry
        now = rules.now()
        if not needs_touch(stored, meta, now, rules.lifetimes):
            return VARY_ONLY
        if skip(request):
            return SKIPPED
        expiry = expires(meta, now, rules.lifetimes)
        max_age = rules.cookie_max_age(expiry, now, persistent)
        if not rules.server_side:
            value = self._sign_data(session, meta)
            return Outcome(set_cookie=rules.cookie.render(value, max_age), vary=True)
        assert self.session_id is not None
        signed = self.signed_id or rules._id_signer.sign(self.session_id)
        return Outcome(
            touch=Touch(self._stored_key(self.session_id), from_timestamp(expiry)),
            set_cookie=rules.cookie.render(signed, max_age),
            vary=True,
        )

    def _stored_key(self, session_id: str) -> str:
        """The store's key for ``session_id``; the loaded one's is hashed only once."""
        if self._key is not None and session_id == self.session_id:
            return self._key
        return store_key(session_id)

    def _write(self, session: Session, persistent: bool) -> Outcome:
        rules = self._rules
        old_id = self.session_id
        retire_old = old_id is not None and (session._invalidated or session._regenerate)
        delete = self._stored_key(old_id) if retire_old and old_id is not None else None
        now = rules.now()
        meta = session.meta_for_write(now)
        expiry = expires(meta, now, rules.lifetimes)
        if not session or expiry <= now:
            # Emptied, invalidated, or past its own lifetime: nothing is left to keep.
            if old_id is not None:
                delete = self._stored_key(old_id)
            expired = rules.cookie.render_expired() if self.had_cookie else None
            return Outcome(delete=delete, set_cookie=expired, vary=True)
        max_age = rules.cookie_max_age(expiry, now, persistent)
        if not rules.server_side:
            value = self._sign_data(session, meta)
            return Outcome(set_cookie=rules.cookie.render(value, max_age), vary=True)
        data = {**session, META_KEY: meta.to_json()}
        whole = _json.dumps(data)
        size = len(whole) if whole.isascii() else len(whole.encode("utf-8"))
        if size > rules.max_size:
            raise SessionTooLarge(size, rules.max_size, "max_size")
        if old_id is None or retire_old:
            session_id = new_session_id()
            signed = rules._id_signer.sign(session_id)
        else:
            session_id = old_id
            signed = self.signed_id or rules._id_signer.sign(old_id)
        created = session_id != old_id
        changes = session.changes(
            also={META_KEY: data[META_KEY]},
            replace=created,
            whole=whole,
            base=None if created else self._version,
        )
        return Outcome(
            delete=delete,
            write=Write(
                self._stored_key(session_id), data, from_timestamp(expiry), changes, created
            ),
            set_cookie=rules.cookie.render(signed, max_age),
            vary=True,
        )

    def _sign_data(self, session: Session, meta: Meta) -> str:
        rules = self._rules
        value = rules._data_signer.sign(_json.dumps({**session, META_KEY: meta.to_json()}))
        assert rules._codec is not None
        rules._codec.check_size(rules.cookie.name, value)
        return value
