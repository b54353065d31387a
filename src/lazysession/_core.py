"""The rules of one request's session, free of I/O: both shells (ASGI, WSGI) do only
header plumbing and store calls around them. :class:`SessionRules` (here) is the
configuration; :class:`~lazysession._exchange.Exchange` applies these rules to one request,
and :mod:`lazysession._outcome` holds what it leaves and the store calls that carry it out.

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
6. Only ``clear()`` or ``invalidate()`` ends a session: it is deleted and its cookie
   expired. Removing keys is a change like any other, merged onto the stored copy; the
   store deletes the session only if the merge leaves it with no key at all. A
   regenerated session moves to a new id. Either way the old id is remembered, briefly,
   as retired.
7. ``Vary: Cookie`` goes out whenever the session was read or written before the
   headers left, and on a streamed response (more body to come once they left) to a
   request that carried a session cookie: its body may still read the session.
8. Nothing is written that could not be read back: a value JSON cannot hold, or a session
   past its size limit, raises before any store I/O.
9. ``Set-Cookie`` goes out only when the browser's cookie must change (a new id, a moved
   ``Max-Age``, a re-signed id, an ended session, attributes changed since it was set
   where the shell tracks them: ``cookie_mark``), and only once the store has done what
   the outcome needed: a session found gone or rotated meanwhile sends none.
10. A request whose id was rotated away moments ago reads an empty session and persists
    nothing, except an explicit logout (which also ends the session the id was rotated
    to), and what a logout then writes (a new session, as with a live id). An id that was
    ended (a logout whose answer the browser never got) reads empty too, and is otherwise
    as unknown (rule 3): a login or a write with it starts a new session, which then
    claims the id (``Store.claim``), so another request with it at once is refused.
11. A write is never answered as a success and then lost: one whose session ended or
    moved meanwhile (a logout, a login, or a write that emptied it, in another tab), or
    that came with a just-rotated id, is refused (``SessionInterrupted``, a 409).
12. A request never undoes what a newer write stored: a read that loaded before another
    request's ``pin()`` or ``set_lifetime()`` does not touch the copy written since, and
    a write that changed no lifetime, pin or owner keeps the stored metadata and expiry
    of a copy written since its load (``Changes.own_meta``, ``touch(base=...)``); its
    answer then leaves the browser's cookie, which that newer write set, alone
    (``Merge.KEPT``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import _defaults
from ._cookies import CookieSettings, cookie_values
from ._exchange import Exchange
from ._expiry import (
    DEFAULT_LIFETIME,
    META_KEY,
    Clock,
    Lifetimes,
    Meta,
    expires,
    seconds_of,
)
from ._outcome import (
    INTERRUPTED,
    NOTHING,
    SKIPPED,
    VARY_ONLY,
    Call,
    Outcome,
    Rotate,
    Touch,
    Write,
    store_calls,
)
from ._session import Session
from ._signing import DataCipher, DataSigner, IdSigner, SecretKeys
from ._values import ValueCodec, decode_values
from .stores import CookieStore, Store

if TYPE_CHECKING:
    from ._crypto import ValueSealer

__all__ = [
    "DEFAULT_MAX_SIZE",
    "INTERRUPTED",
    "NOTHING",
    "SKIPPED",
    "VARY_ONLY",
    "Call",
    "Exchange",
    "Outcome",
    "Rotate",
    "SessionRules",
    "Touch",
    "ValueCodec",
    "Write",
    "store_calls",
]

DEFAULT_MAX_SIZE = _defaults.MAX_SIZE
"""Bytes of JSON a server-side session may hold unless ``max_size`` says otherwise."""


class SessionRules:
    """Configuration, checked once; ``begin`` starts the rules for one request."""

    __slots__ = (
        "_data_signer",
        "_id_signer",
        "cookie",
        "cookie_mark",
        "cookie_store",
        "lifetimes",
        "max_per_owner",
        "max_size",
        "now",
        "record_device",
        "sealer",
        "server_side",
        "session_class",
        "value_codec",
    )

    def __init__(
        self,
        *,
        secret_key: object,
        cookie: CookieSettings,
        store: Store | CookieStore,
        clock: Clock,
        lifetimes: Lifetimes | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        session_class: type[Session] = Session,
        value_codec: ValueCodec | None = None,
        encrypt: bool = False,
        record_device: bool = False,
        max_sessions_per_owner: int | None = None,
        cookie_mark: str | None = None,
    ) -> None:
        """``value_codec``: applied to every top-level value loaded and written; None keeps
        values as JSON has them. ``encrypt``: the cookie store's cookie is encrypted, or a
        server store's values are, each after the codec (``lazysession._crypto``).
        ``record_device``: a login that names an owner records the device label of its
        ``User-Agent``. ``max_sessions_per_owner``: a login past it revokes the owner's
        least recently seen other sessions. ``store``: a :class:`CookieStore` is the
        cookie mode (the session travels in the cookie, and no store is called).
        ``cookie_mark``: a digest of the cookie's attributes (``SameSite``, ``Secure``, ...),
        kept with each server-side session whose cookie was set under them: a write
        re-sends the cookie once they changed (rule 9; Flask reads them on every request)."""
        keys = SecretKeys(secret_key)
        self.cookie_mark = cookie_mark
        self.record_device = record_device
        self.max_per_owner = max_sessions_per_owner
        self.value_codec = value_codec
        self.cookie = cookie
        self.now = seconds_of(clock)
        self.cookie_store = store if isinstance(store, CookieStore) else None
        """The cookie mode's settings; None: the session is kept in a store."""
        self.server_side = self.cookie_store is None
        if lifetimes is None:
            lifetimes = Lifetimes() if cookie.max_age is None else Lifetimes(cookie.max_age)
        self.lifetimes = lifetimes
        self.max_size = max_size
        self.session_class = session_class
        self._id_signer = IdSigner(keys)
        self._data_signer: DataSigner | DataCipher = DataSigner(keys, clock)
        self.sealer: ValueSealer | None = None
        """Encrypts a server store's values (``encrypt=True``); None: stored as JSON."""
        if encrypt and self.server_side:
            from ._crypto import ValueSealer

            self.sealer = ValueSealer(keys)
        elif encrypt:
            self._data_signer = DataCipher(keys, cookie.name, clock)

    @classmethod
    def from_options(
        cls,
        *,
        secret_key: object,
        store: Store | CookieStore,
        cookie: CookieSettings,
        idle_timeout: int | None,
        touch_after: float,
        max_size: int,
        clock: Clock,
        encrypt: bool = False,
        record_device: bool = False,
        max_sessions_per_owner: int | None = None,
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
            encrypt=encrypt,
            record_device=record_device,
            max_sessions_per_owner=max_sessions_per_owner,
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
                session = self.session_class(decode_values(self.value_codec, data))
                exchange = Exchange(self, None, True, session)
                exchange._adopt(meta, stored)
                return exchange
        return Exchange(self, None, True, self.session_class())

    def cookie_max_age(self, expiry: float, now: float, persistent: bool) -> int | None:
        """Seconds the browser should keep the cookie: until the session expires, or,
        for a browser-session cookie, no ``Max-Age`` at all."""
        if not persistent or self.cookie.max_age is None:
            return None
        return max(1, math.ceil(expiry - now))
