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
   ``Max-Age``, a re-signed id, an ended session), and only once the store has done what
   the outcome needed: a session found gone or rotated meanwhile sends none.
10. A request whose id was retired moments ago (rotated away, or ended) reads an empty
    session and persists nothing, except an explicit logout (which also ends the session
    the id was rotated to), and what a logout then writes (a new session, as with a live
    id).
11. A write is never answered as a success and then lost: one whose session ended or
    moved meanwhile (a logout, a login, or a write that emptied it, in another tab), or
    that came with a retired id, is refused (``SessionInterrupted``, a 409).
12. A request never undoes what a newer write stored: a read that loaded before another
    request's ``pin()`` or ``set_lifetime()`` does not touch the copy written since, and
    a write that changed no lifetime, pin or owner keeps the stored metadata and expiry
    of a copy written since its load (``Changes.own_meta``, ``touch(base=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import _json
from ._cookies import CookieSettings, cookie_values
from ._errors import SessionInterrupted, SessionTooLarge, StoreError, report_store_error
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
from ._identity import SessionEvent, device_label, handle_of
from ._session import _UNSET, Session, UnavailableSession
from ._signing import DataCipher, DataSigner, IdSigner, SecretKeys, new_session_id, store_key
from .stores import Changes, CookieStore, Record, Store
from .stores._base import Merge

if TYPE_CHECKING:
    from ._crypto import Opened, ValueSealer
    from .metrics import Metrics

Request = TypeVar("Request")

DEFAULT_MAX_SIZE = 64 * 1024
"""Bytes of JSON a server-side session may hold unless ``max_size`` says otherwise."""


class ValueCodec(Protocol):
    """Turns each top-level session value into what JSON can hold and back (Flask's
    tagged JSON): ``dump`` on every value written, ``load`` on every value loaded."""

    def dump(self, value: Any) -> Any: ...

    def load(self, value: Any) -> Any: ...


def _dumped(codec: ValueCodec | None, values: Mapping[str, Any]) -> Mapping[str, Any]:
    if codec is None:
        return values
    return {key: codec.dump(value) for key, value in values.items()}


def _loaded(codec: ValueCodec | None, data: dict[str, Any]) -> dict[str, Any]:
    if codec is None:
        return data
    return {key: codec.load(value) for key, value in data.items()}


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Write:
    """Store ``data`` under ``session_id`` until ``expires_at``."""

    session_id: str
    data: dict[str, Any]
    expires_at: datetime
    changes: Changes
    """Only what this request changed, for stores that merge onto the stored copy."""
    created: bool = False
    """A session id minted by this request: ``data`` is stored whole (``save``); otherwise
    ``changes`` are merged onto the stored copy, or replace it if still there (``update``)."""

    @property
    def merge(self) -> bool:
        """Merge ``changes`` onto the stored copy (an existing session), rather than
        store ``data`` whole (a new session)."""
        return not self.created


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Rotate:
    """Move the session under ``old_id`` to ``session_id`` with ``changes`` merged on."""

    old_id: str
    session_id: str
    changes: Changes
    expires_at: datetime


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Touch:
    """Move the expiry of the session under ``session_id``; its data is unchanged."""

    session_id: str
    expires_at: datetime
    base: object = None
    """The ``Record.version`` the request loaded: the touch applies only to that copy."""


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Outcome:
    """What the shell must do before the response headers go out, in this order:
    delete, write or touch, then add the headers."""

    delete: str | None = None
    write: Write | None = None
    rotate: Rotate | None = None
    touch: Touch | None = None
    set_cookie: str | None = None
    """Sent once the store work succeeded and the session lives on (None: the browser's
    cookie stays as it is)."""
    expired_cookie: str | None = None
    """Sent instead when the store reports the merge left the session empty (deleted)."""
    vary: bool = False
    skipped: bool = False
    """``skip_persistence`` matched: something would have been persisted, and was not."""
    interrupted: bool = False
    """The request wrote to a session whose id was retired meanwhile: refused (rule 11)."""
    owner: str | None = None
    """The owner of the session written, when it has one."""
    ended_owner: str | None = None
    """The owner the ``delete``d session had, when it had one."""
    login: bool = False
    """The write is a login that names ``owner`` (``regenerate(owner=...)``)."""
    cap: int | None = None
    """For a login: the owner keeps at most this many sessions (``max_sessions_per_owner``);
    the least recently seen others are revoked."""


Call = tuple[str, tuple[Any, ...], dict[str, Any]]
"""A store method's name, its arguments and its keyword arguments."""


def store_calls(
    outcome: Outcome, metrics: Metrics, events: list[SessionEvent] | None = None
) -> Generator[Call, Any, str | None]:
    """The store calls an outcome needs, in order, each call's answer sent back in (the
    shells await them or not); counts what was done, and returns the ``Set-Cookie``
    value to send, if any. Written once, for every shell. Raises
    :class:`~lazysession.SessionInterrupted` when the changes could not be kept because
    the session ended or moved meanwhile (rule 11). ``events``, when given, receives
    what happened to sessions, for ``on_event``."""
    if outcome.interrupted:
        metrics.interrupted += 1
        raise SessionInterrupted("the session's id was retired while the request ran")
    if outcome.skipped:
        metrics.skipped += 1
    write, rotate, touch = outcome.write, outcome.rotate, outcome.touch
    if outcome.delete is not None:
        yield "delete", (outcome.delete,), {}
        metrics.deleted += 1
        if events is not None:
            ended = SessionEvent("invalidated", handle_of(outcome.delete), outcome.ended_owner)
            events.append(ended)
    if write is not None:
        if write.created:
            yield "save", (write.session_id, write.data), {"expires_at": write.expires_at}
            metrics.saved += 1
            metrics.created += 1
            if events is not None:
                owner = outcome.owner
                events.append(SessionEvent("created", handle_of(write.session_id), owner))
            if outcome.login:
                yield from _cap(outcome, write.session_id, events)
            return outcome.set_cookie
        merged = yield "update", (write.session_id, write.changes), {"expires_at": write.expires_at}
        return _cookie_after(outcome, merged, metrics)
    if rotate is not None:
        args = (rotate.old_id, rotate.session_id, rotate.changes)
        merged = yield "rotate", args, {"expires_at": rotate.expires_at}
        if merged is Merge.APPLIED:
            metrics.created += 1
            if events is not None:
                handle = handle_of(rotate.session_id)
                events.append(SessionEvent("regenerated", handle, outcome.owner))
            if outcome.login:
                yield from _cap(outcome, rotate.session_id, events)
        return _cookie_after(outcome, merged, metrics)
    if touch is not None:
        options: dict[str, Any] = {"expires_at": touch.expires_at}
        if touch.base is not None:  # a store that versions its copies takes it
            options["base"] = touch.base
        if (yield "touch", (touch.session_id,), options):
            metrics.touched += 1
            return outcome.set_cookie
        return None
    return outcome.set_cookie


def _cap(
    outcome: Outcome, key: str, events: list[SessionEvent] | None
) -> Generator[Call, Any, None]:
    """After a login that named an owner: revoke the owner's least recently seen other
    sessions past ``outcome.cap``. The login stands whatever this finds: a store error
    here is logged, and the cap is kept at the next login."""
    cap, owner = outcome.cap, outcome.owner
    if cap is None or owner is None:
        return
    this = handle_of(key)
    try:
        listed = yield "sessions_of", (owner,), {}
        others = [info.handle for info in listed if info.handle != this]  # most recent first
        for handle in others[max(0, cap - 1) :]:
            if (yield "revoke", (owner, handle), {}) and events is not None:
                events.append(SessionEvent("revoked", handle, owner))
    except StoreError as error:
        report_store_error(error, "the login stands; the session cap is kept at the next one")


def _cookie_after(outcome: Outcome, merged: object, metrics: Metrics) -> str | None:
    if merged is Merge.EMPTIED:
        metrics.deleted += 1
        return outcome.expired_cookie
    if merged is Merge.GONE or merged is False:  # False: a store of the older contract
        metrics.interrupted += 1
        raise SessionInterrupted("the session ended or moved while the request ran")
    metrics.saved += 1
    return outcome.set_cookie


NOTHING = Outcome()
VARY_ONLY = Outcome(vary=True)
SKIPPED = Outcome(vary=True, skipped=True)
INTERRUPTED = Outcome(vary=True, interrupted=True)


class SessionRules:
    """Configuration, checked once; ``begin`` starts the rules for one request."""

    __slots__ = (
        "_codec",
        "_data_signer",
        "_id_signer",
        "clock",
        "cookie",
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
        store: Store,
        clock: Clock,
        lifetimes: Lifetimes | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        session_class: type[Session] = Session,
        value_codec: ValueCodec | None = None,
        encrypt: bool = False,
        record_device: bool = False,
        max_sessions_per_owner: int | None = None,
    ) -> None:
        """``value_codec``: applied to every top-level value loaded and written; None keeps
        values as JSON has them. ``encrypt``: the cookie store's cookie is encrypted, or a
        server store's values are, each after the codec (``lazysession._crypto``).
        ``record_device``: a login that names an owner records the device label of its
        ``User-Agent``. ``max_sessions_per_owner``: a login past it revokes the owner's
        least recently seen other sessions."""
        keys = SecretKeys(secret_key)
        self.record_device = record_device
        self.max_per_owner = max_sessions_per_owner
        self.value_codec = value_codec
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
        self._data_signer: DataSigner | DataCipher = DataSigner(keys, clock)
        self.sealer: ValueSealer | None = None
        """Encrypts a server store's values (``encrypt=True``); None: stored as JSON."""
        if encrypt and self.server_side:
            from ._crypto import ValueSealer

            self.sealer = ValueSealer(keys)
        elif encrypt:
            self._data_signer = DataCipher(keys, cookie.name, clock)
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
                session = self.session_class(_loaded(self.value_codec, data))
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


class Exchange:
    """One request's session, from the cookie it came with to the outcome it leaves."""

    __slots__ = (
        "_key",
        "_loaded_size",
        "_opened",
        "_owner",
        "_rules",
        "_version",
        "ephemeral",
        "had_cookie",
        "load_key",
        "retired",
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
        self._loaded_size: int | None = None
        self._opened: Opened | None = None
        self._owner: str | None = None
        """The owner of the session as loaded."""
        self.retired = False
        """The store said the loaded id was retired moments ago (rule 10)."""

    def _adopt(self, meta: Meta, stored_expiry: float | None) -> None:
        assert self.session is not None
        self.session._meta = meta
        self._owner = meta.owner
        self.stored_expiry = stored_expiry

    def loaded(self, record: Record | None) -> Session:
        """Hand in what the store returned for ``load_key``."""
        self.load_key = None
        rules = self._rules
        if record is not None:
            if record.retired:  # rule 10: the id grants nothing, and mints nothing
                self.retired = True
                self.session = rules.session_class()
                return self.session
            if rules.sealer is not None:  # encrypted: what fails to decrypt is absent
                assert self._key is not None
                record, self._opened = rules.sealer.open(record, self._key)
        if record is not None:
            self._version = record.version
            self._loaded_size = record.size
            data = record.data  # a fresh dict from the store's JSON: ours to change
            now = rules.now()
            meta = Meta.from_json(data.pop(META_KEY, None), now)
            lifetimes = rules.lifetimes
            if hard_expiry(meta, lifetimes) > now:
                session = self.session = rules.session_class(_loaded(rules.value_codec, data))
                session._key = self._key
                idle = lifetimes.idle is not None
                self._adopt(meta, record.expires_at.timestamp() if idle else None)
                return session
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
        user_agent: Callable[[], str | None] | None = None,
        streaming: bool = False,
    ) -> Outcome:
        """Decide what to persist. ``skip(request)`` runs the ``skip_persistence``
        predicate, only when there is something to persist. ``persistent_cookie=False``
        sends a browser-session cookie (Flask's non-permanent sessions). ``user_agent``
        reads the request's ``User-Agent``, for a login's device label. ``streaming``:
        more body is to come once the headers left, and it may still read the session
        (rule 7)."""
        session = self.session
        if session is None:
            return NOTHING
        if not session.accessed:
            return VARY_ONLY if streaming and self.had_cookie else NOTHING
        if self.ephemeral:
            return VARY_ONLY
        if status >= 500:
            return VARY_ONLY
        if not session.modified:
            return self._touch(session, skip, request, persistent_cookie)
        if skip(request):
            return SKIPPED
        if self.retired:
            if session._invalidated and session:  # a logout that then wrote: both happen
                return self._write(session, persistent_cookie, user_agent)
            return self._after_rotation(session)
        return self._write(session, persistent_cookie, user_agent)

    def _after_rotation(self, session: Session) -> Outcome:
        """Rule 10: a logout with a retired id ends what it was rotated to; any other
        change is refused (rule 11), and the browser's (newer) cookie is left alone."""
        if session._invalidated or (session._cleared and not session):
            assert self.session_id is not None
            return Outcome(
                delete=self._stored_key(self.session_id),
                set_cookie=self._rules.cookie.render_expired(),
                vary=True,
            )
        return INTERRUPTED

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
        cookie = None
        if max_age is not None or self.signed_id is None:  # the cookie's expiry moves
            signed = self.signed_id or rules._id_signer.sign(self.session_id)
            cookie = rules.cookie.render(signed, max_age)
        return Outcome(
            touch=Touch(self._stored_key(self.session_id), from_timestamp(expiry), self._version),
            set_cookie=cookie,
            vary=True,
        )

    def _stored_key(self, session_id: str) -> str:
        """The store's key for ``session_id``; the loaded one's is hashed only once."""
        if self._key is not None and session_id == self.session_id:
            return self._key
        return store_key(session_id)

    def _write(
        self, session: Session, persistent: bool, user_agent: Callable[[], str | None] | None
    ) -> Outcome:
        rules = self._rules
        now = rules.now()
        login = session._regenerate and session.logs_in()
        device = None
        if login and rules.record_device and user_agent is not None:
            device = device_label(user_agent())
        meta = session.meta_for_write(now, device)
        expiry = expires(meta, now, rules.lifetimes)
        lapsed = not session or expiry <= now
        # A session written that is already past its lifetime (max_age <= 0, as Starlette
        # allows) is dropped by the browser too, as Starlette's cookie would be.
        dropped = self.had_cookie or (lapsed and bool(session))
        expired = rules.cookie.render_expired() if dropped else None
        if not rules.server_side:  # the cookie is the session
            if lapsed:
                return Outcome(set_cookie=expired, vary=True)
            value = self._sign_data(session, meta)
            max_age = rules.cookie_max_age(expiry, now, persistent)
            return Outcome(set_cookie=rules.cookie.render(value, max_age), vary=True)
        old_id = self.session_id
        old_key = None if old_id is None else self._stored_key(old_id)
        loaded_owner = self._owner
        if session._invalidated:
            if lapsed:  # rule 6: ended
                return Outcome(
                    delete=old_key, set_cookie=expired, vary=True, ended_owner=loaded_owner
                )
            old_id = None  # ended, then written: a new session begins
        elif old_id is None:
            if lapsed:  # new and left empty: nothing to keep
                return Outcome(set_cookie=expired, vary=True)
        elif (session._cleared and not session) or expiry <= now:  # rule 6: ended
            return Outcome(delete=old_key, set_cookie=expired, vary=True, ended_owner=loaded_owner)
        rotating = old_id is not None and session._regenerate
        max_age = rules.cookie_max_age(expiry, now, persistent)
        if old_id is None or rotating:
            session_id = new_session_id(now)  # the id carries its creation time
            signed: str | None = rules._id_signer.sign(session_id)
        else:
            session_id = old_id
            signed = self.signed_id
            if signed is None:  # verified by a retired key: re-signed with the current one
                signed = rules._id_signer.sign(old_id)
            elif not self._cookie_moves(session, expiry, persistent):
                signed = None  # rule 9: the browser's cookie stays right
        key = self._stored_key(session_id)
        sealer, opened = rules.sealer, self._opened if old_id is not None else None
        if sealer is None:
            data = {**_dumped(rules.value_codec, session), META_KEY: meta.to_json()}
        else:  # encrypted under the session's binding, which a rotation keeps
            data = sealer.seal(_dumped(rules.value_codec, session), meta.to_json(), key, opened)
        whole = _json.dumps(data)
        size = len(whole) if whole.isascii() else len(whole.encode("utf-8"))
        if size > rules.max_size and (self._loaded_size is None or size > self._loaded_size):
            raise SessionTooLarge(size, rules.max_size, "max_size")
        changes = session.changes(
            also={META_KEY: data[META_KEY]},
            replace=old_id is None,
            whole=whole,
            base=None if session_id != old_id else self._version,
            max_size=rules.max_size,
        )
        if meta is session._meta and session_id == old_id:
            changes.own_meta = False  # as loaded: a newer stored copy's metadata stands
        if sealer is not None:
            sealer.changes(changes, data, opened)  # by stored field, the sealed values
        elif rules.value_codec is not None:
            changes.set = {name: data[name] for name in changes.set}  # the encoded values
        cookie = None if signed is None else rules.cookie.render(signed, max_age)
        cap = rules.max_per_owner if login else None
        if rotating:
            assert old_key is not None
            rotate = Rotate(old_key, key, changes, from_timestamp(expiry))
            return Outcome(
                rotate=rotate,
                set_cookie=cookie,
                expired_cookie=expired,
                vary=True,
                owner=meta.owner,
                login=login,
                cap=cap,
            )
        created = session_id != old_id
        return Outcome(
            delete=old_key if created else None,
            write=Write(key, data, from_timestamp(expiry), changes, created),
            set_cookie=cookie,
            expired_cookie=expired,
            vary=True,
            owner=meta.owner if created else None,
            ended_owner=loaded_owner if created else None,
            login=login,
            cap=cap,
        )

    def _cookie_moves(self, session: Session, expiry: float, persistent: bool) -> bool:
        """Whether a write to an existing session changes what its cookie must say: its
        ``Max-Age`` (under an idle timeout, or a new lifetime) or a cookie-bound key."""
        if session.cookie_changed():
            return True
        if not persistent or self._rules.cookie.max_age is None:
            return False
        if session._lifetime is not _UNSET:
            return True
        stored = self.stored_expiry
        return stored is not None and abs(expiry - stored) >= 1

    def _sign_data(self, session: Session, meta: Meta) -> str:
        rules = self._rules
        data = {**_dumped(rules.value_codec, session), META_KEY: meta.to_json()}
        value = rules._data_signer.sign(_json.dumps(data))
        assert rules._codec is not None
        rules._codec.check_size(rules.cookie.name, value)
        return value
