"""What one request leaves for its shell to do, and the store calls that do it.

Rules:
1. An :class:`Outcome` is plain data, free of I/O: ``Exchange.finish`` (``lazysession._exchange``)
   decides it, following the rules in ``lazysession._core``; the shells carry it out.
2. :func:`store_calls` is the one place that turns an outcome into store calls, in order
   (delete, then write, rotate or touch, then a login's owner cap), for every shell: the
   async ones await each call, the sync ones make it.
3. :func:`changes_of` builds the store's ``Changes`` from what the session's
   :class:`~lazysession._session.RequestLog` says the request did.
4. A ``Set-Cookie`` is returned only once the store did what the outcome needed; a session
   found gone or rotated meanwhile raises ``SessionInterrupted`` instead (rule 11).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._errors import SessionInterrupted, StoreError, report_store_error
from ._expiry import META_KEY
from ._identity import SessionEvent, handle_of
from ._session import _NO_KEYS, RequestLog, Session, log_of
from .stores import Changes
from .stores._base import Merge

if TYPE_CHECKING:
    from .metrics import Metrics


def changes_of(
    session: Session,
    log: RequestLog | None = None,
    *,
    also: Mapping[str, Any] | None = None,
    replace: bool = False,
    whole: str | None = None,
    base: object = None,
    max_size: int | None = None,
) -> Changes:
    """The store's :class:`~lazysession.Changes` for what the request did to ``session``
    (``log``, read from it when not given): the keys it set, with their values, and the
    ones it removed; ``also`` adds keys set by the core (the session's metadata)."""
    if log is None:
        log = log_of(session)
    changed = {k: session[k] for k in log.set_keys if k in session}
    if also:
        changed.update(also)
    removed = log.removed or _NO_KEYS
    return Changes(changed, removed, replace or log.cleared, whole, base, not session, max_size)


def write_changes(
    session: Session,
    log: RequestLog,
    meta: object,
    replace: bool,
    whole: str,
    base: object,
    max_size: int,
) -> Changes:
    """``changes_of`` for the core's write, in one step: ``meta`` (the session's metadata as
    stored) is set under ``META_KEY`` too."""
    changed = {k: session[k] for k in log.set_keys if k in session}
    changed[META_KEY] = meta
    return Changes(changed, log.removed, replace or log.cleared, whole, base, not session, max_size)


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
    cookie_moves_expiry: bool = False
    """``set_cookie`` is sent only to move the cookie's expiry with the write's: not when
    the store kept a newer copy's expiry instead (``Merge.KEPT``)."""
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
    claim: str | None = None
    """The store key of the ended id the request came with: the new session, once saved,
    claims it (``Store.claim``); if another request did first, the new session is
    deleted and the request refused (rule 10). Saved first, a claim never names a
    session that a failed save left missing."""
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
            claim = outcome.claim  # after the save: a claim always names a session
            if claim is not None and not (yield "claim", (claim, write.session_id), {}):
                yield "delete", (write.session_id,), {}
                metrics.interrupted += 1
                raise SessionInterrupted("another request started a session for that id")
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
        if merged is Merge.APPLIED or merged is Merge.KEPT:
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
    sessions past ``outcome.cap``. Only those seen before this login are its to judge: a
    session seen after it (another login at the same moment) trims for itself, so two
    logins at once never end each other. The login stands whatever this finds: a store
    error here is logged, and the cap is kept at the next login."""
    cap, owner = outcome.cap, outcome.owner
    if cap is None or owner is None:
        return
    this = handle_of(key)
    try:
        listed = yield "sessions_of", (owner,), {}
        handles = [info.handle for info in listed]  # most recently seen first
        newer = handles.index(this) if this in handles else 0
        kept = {this, *handles[:cap]}
        for handle in handles[newer:]:
            if handle in kept:
                continue
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
    if merged is Merge.KEPT and outcome.cookie_moves_expiry:
        return None  # rule 12: the newer copy's expiry stood, and its writer's cookie
    return outcome.set_cookie


NOTHING = Outcome()
VARY_ONLY = Outcome(vary=True)
SKIPPED = Outcome(vary=True, skipped=True)
INTERRUPTED = Outcome(vary=True, interrupted=True)
