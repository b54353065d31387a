"""One request's session, from the cookie it came with to the :class:`Outcome` it leaves.

Rules:
1. :class:`Exchange` follows the session rules numbered in ``lazysession._core``'s
   docstring; :class:`~lazysession._core.SessionRules` holds the configuration it reads.
2. It does no I/O: the shell loads what ``load_key`` names, hands it to ``loaded``, and
   carries out what ``finish`` returns (``lazysession._outcome.store_calls``).
3. ``value_codec`` is applied to every top-level value loaded and written (``_values``);
   None keeps values as JSON has them.
4. It reads what the handler did through the session's :class:`RequestLog` and builds the
   store's :class:`~lazysession.Changes` from it (``lazysession._outcome.write_changes``).
5. Its steps come in one order, each once: ``loaded`` (or ``unavailable``) while
   ``LOADING``, then ``finish`` when ``READY`` (or ``UNAVAILABLE``); anything else raises
   ``RuntimeError``. An exchange made with its session (no cookie, or the cookie store)
   starts ``READY``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from . import _json
from ._errors import SessionTooLarge
from ._expiry import (
    META_KEY,
    Meta,
    expires,
    from_timestamp,
    hard_expiry,
    needs_touch,
)
from ._identity import device_label
from ._outcome import (
    INTERRUPTED,
    NOTHING,
    SKIPPED,
    VARY_ONLY,
    Outcome,
    Rotate,
    Touch,
    Write,
    write_changes,
)
from ._session import RequestLog, Session, UnavailableSession, adopt, log_of
from ._signing import new_session_id, store_key
from ._values import decode_values, encode_values
from .stores import Record

if TYPE_CHECKING:
    from ._core import SessionRules
    from ._crypto import Opened

Request = TypeVar("Request")


class State(enum.Enum):
    """Where an :class:`Exchange` is in its request (rule 5)."""

    LOADING = "loading"
    """The session its cookie names is still to be loaded (``load_key``)."""
    READY = "ready"
    """The handler has its session; ``finish`` decides what it leaves."""
    UNAVAILABLE = "unavailable"
    """The store could not load the session; ``finish`` persists nothing."""
    FINISHED = "finished"
    """``finish`` has decided: nothing more to do."""


# Module globals: read on every request, one lookup each instead of two.
_LOADING, _READY, _UNAVAILABLE, _FINISHED = (
    State.LOADING,
    State.READY,
    State.UNAVAILABLE,
    State.FINISHED,
)


class Exchange:
    """One request's session, from the cookie it came with to the outcome it leaves."""

    __slots__ = (
        "_ended",
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
        "state",
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
        self.state = _LOADING if session is None else _READY
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
        """The store said the loaded id was rotated away moments ago (rule 10)."""
        self._ended: str | None = None
        """The store key of the loaded id, when the store said its session had ended."""

    def _adopt(self, meta: Meta, stored_expiry: float | None) -> None:
        assert self.session is not None
        adopt(self.session, meta, self._key)
        self._owner = meta.owner
        self.stored_expiry = stored_expiry

    def _out_of_order(self, name: str) -> RuntimeError:
        """``name`` comes once, while ``LOADING``: before ``finish``."""
        return RuntimeError(f"Exchange.{name}() while {self.state.value}: nothing to load")

    def loaded(self, record: Record | None) -> Session:
        """Hand in what the store returned for ``load_key``."""
        if self.state is not _LOADING:
            raise self._out_of_order("loaded")
        self.state = _READY
        self.load_key = None
        rules = self._rules
        if record is not None:
            if record.retired:  # rule 10: the id grants nothing
                if record.rotated:  # and mints nothing: the browser may hold its successor
                    self.retired = True
                    self.session = rules.session_class()
                    return self.session
                record = None  # ended: no newer cookie to keep, so as good as unknown
                self._ended = self._key  # ... but claimed by the first session it starts
            elif rules.sealer is not None:  # encrypted: what fails to decrypt is absent
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
                session = self.session = rules.session_class(decode_values(rules.value_codec, data))
                adopt(session, meta, self._key)
                self._owner = meta.owner
                if lifetimes.idle is not None:  # the rule that looks at it
                    self.stored_expiry = record.expires_at.timestamp()
                return session
        self.session_id = self.signed_id = None  # rule 3: an unknown id is never adopted
        self.session = rules.session_class()
        return self.session

    def unavailable(
        self, *, proceed: bool, placeholder: type[Session] = UnavailableSession
    ) -> Session:
        """The store failed to load the session. ``proceed``: the handler gets an empty
        session that is never saved; otherwise a ``placeholder`` that raises on use."""
        if self.state is not _LOADING:
            raise self._out_of_order("unavailable")
        self.state = _UNAVAILABLE
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
        (rule 7). Comes once, after ``loaded`` or ``unavailable`` (rule 5)."""
        state = self.state
        if state is not _READY and state is not _UNAVAILABLE:
            raise RuntimeError(f"Exchange.finish() while {state.value}")
        self.state = _FINISHED
        session = self.session
        assert session is not None
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
        log = log_of(session)
        if self.retired:
            if log.invalidated and session:  # a logout that then wrote: both happen
                return self._write(session, log, persistent_cookie, user_agent)
            return self._after_rotation(session, log)
        return self._write(session, log, persistent_cookie, user_agent)

    def _after_rotation(self, session: Session, log: RequestLog) -> Outcome:
        """Rule 10: a logout with a retired id ends what it was rotated to; any other
        change is refused (rule 11), and the browser's (newer) cookie is left alone."""
        if log.invalidated or (log.cleared and not session):
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
        stored = self.stored_expiry
        if stored is None or rules.lifetimes.idle is None:
            return VARY_ONLY  # no idle timeout: reads never move the expiry
        meta = log_of(session).meta
        if meta is None:
            return VARY_ONLY
        now = rules.now()
        if not needs_touch(stored, meta, now, rules.lifetimes):
            return VARY_ONLY
        if skip(request):
            return SKIPPED
        expiry = expires(meta, now, rules.lifetimes)
        max_age = rules.cookie_max_age(expiry, now, persistent)
        if not rules.server_side:
            if not persistent:  # a browser-session cookie: nothing to move (Flask's rule)
                return VARY_ONLY
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
        self,
        session: Session,
        log: RequestLog,
        persistent: bool,
        user_agent: Callable[[], str | None] | None,
    ) -> Outcome:
        rules = self._rules
        now = rules.now()
        login = log.logs_in
        device = None
        if login and rules.record_device and user_agent is not None:
            device = device_label(user_agent())
        meta = session.meta_for_write(now, device)
        # The cookie's attributes changed since it was set (known only for a cookie set
        # under a mark: one set before counts as set under these).
        mark = rules.cookie_mark
        remark = mark is not None and meta.mark is not None and meta.mark != mark
        if remark:
            meta = replace(meta, mark=mark)
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
        moves_expiry = False
        if log.invalidated:
            if lapsed:  # rule 6: ended
                return Outcome(
                    delete=old_key, set_cookie=expired, vary=True, ended_owner=loaded_owner
                )
            old_id = None  # ended, then written: a new session begins
        elif old_id is None:
            if lapsed:  # new and left empty: nothing to keep
                return Outcome(set_cookie=expired, vary=True)
        elif (log.cleared and not session) or expiry <= now:  # rule 6: ended
            return Outcome(delete=old_key, set_cookie=expired, vary=True, ended_owner=loaded_owner)
        rotating = old_id is not None and log.regenerate
        max_age = rules.cookie_max_age(expiry, now, persistent)
        if old_id is None or rotating:
            session_id = new_session_id(now)  # the id carries its creation time
            signed: str | None = rules._id_signer.sign(session_id)
        else:
            session_id = old_id
            signed = self.signed_id
            if signed is None:  # verified by a retired key: re-signed with the current one
                signed = rules._id_signer.sign(old_id)
            elif not remark and not self._cookie_moves(log, expiry, persistent):
                signed = None  # rule 9: the browser's cookie stays right
            else:
                moves_expiry = not (remark or log.cookie_changed)
        if signed is not None and session_id != old_id and mark is not None and meta.mark != mark:
            meta = replace(meta, mark=mark)  # a new id's cookie: set under these attributes
        key = self._stored_key(session_id)
        sealer, opened = rules.sealer, self._opened if old_id is not None else None
        values = session if rules.value_codec is None else encode_values(rules.value_codec, session)
        if sealer is None:
            data = {**values, META_KEY: meta.to_json()}
        else:  # encrypted under the session's binding, which a rotation keeps
            data = sealer.seal(values, meta.to_json(), key, opened)
        whole = _json.dumps(data)
        size = len(whole) if whole.isascii() else len(whole.encode("utf-8"))
        if size > rules.max_size and (self._loaded_size is None or size > self._loaded_size):
            raise SessionTooLarge(size, rules.max_size, "max_size")
        base = None if session_id != old_id else self._version
        meta_json = data[META_KEY]
        changes = write_changes(
            session, log, meta_json, old_id is None, whole, base, rules.max_size
        )
        if meta is log.meta and session_id == old_id:
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
            cookie_moves_expiry=moves_expiry,
            vary=True,
            owner=meta.owner if created else None,
            ended_owner=loaded_owner if created else None,
            claim=self._ended if old_id is None else None,
            login=login,
            cap=cap,
        )

    def _cookie_moves(self, log: RequestLog, expiry: float, persistent: bool) -> bool:
        """Whether a write to an existing session changes what its cookie must say: its
        ``Max-Age`` (under an idle timeout, or a new lifetime) or a cookie-bound key."""
        if log.cookie_changed:
            return True
        if not persistent or self._rules.cookie.max_age is None:
            return False
        if log.lifetime_set:
            return True
        stored = self.stored_expiry
        return stored is not None and abs(expiry - stored) >= 1

    def _sign_data(self, session: Session, meta: Meta) -> str:
        rules = self._rules
        values = session if rules.value_codec is None else encode_values(rules.value_codec, session)
        data = {**values, META_KEY: meta.to_json()}
        value = rules._data_signer.sign(_json.dumps(data))
        assert rules.cookie_store is not None
        rules.cookie_store.check_size(rules.cookie.name, value)
        return value
