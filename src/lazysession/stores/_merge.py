"""The merge rule every store that merges in Python uses, and what a stored session's
JSON says of itself (its origin, its owner, what ``sessions_of`` lists of it).

Rules:
- ``merge_onto`` is the one merge of a request's ``Changes`` onto a stored copy, as the
  store contract (``_base``) states it: the writer's whole session when nothing came in
  between, else the changes applied key by key; no key left (besides the metadata)
  means the session is to be deleted; the stored metadata and expiry stand when the
  changes carry none of their own and a newer copy is stored.
- A result past ``changes.max_size`` that is larger than the stored copy raises
  :class:`~lazysession.SessionTooLarge` before anything is stored.
- A rotation's new session names the id it came from in its metadata (``with_origin``),
  so a logout can end that id too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _json
from .._errors import SessionTooLarge
from .._expiry import DEVICE, META_KEY, ORIGIN, OWNER
from .._identity import SessionInfo, handle_of

if TYPE_CHECKING:
    from ._base import Changes


@dataclass(slots=True)
class Merged:
    """The outcome of merging changes onto a stored copy: the JSON to store (None: the
    session is left with no key and is to be deleted), and whether the stored expiry
    stands (the changes' metadata gave way to the stored copy's)."""

    text: str | None
    keep_expiry: bool = False


def has_keys(data: dict[str, Any]) -> bool:
    """Whether a session holds anything besides its own metadata."""
    return len(data) > (1 if META_KEY in data else 0)


def merge_onto(stored: str | bytes | None, changes: Changes, version: object = None) -> Merged:
    """The one merge rule every store that merges in Python uses: ``changes`` onto the
    ``stored`` JSON (None: nothing stored, as after a clear). ``version`` is the stored
    copy's, to take the writer's whole session when nothing came in between. Raises
    :class:`~lazysession.SessionTooLarge` when the result passes ``changes.max_size`` and
    is larger than what is stored."""
    same_copy = version is not None and changes.base == version
    keep = (
        not changes.own_meta
        and not same_copy
        and stored is not None
        and version is not None
        and changes.base is not None
    )
    if changes.whole is not None and (same_copy or (changes.replace and not keep)):
        if changes.empty:
            return Merged(None)
        text = changes.whole
    else:
        loaded = None if stored is None else _json.loads(stored)
        merged = changes.apply_to(None if changes.replace else loaded)
        if not has_keys(merged):
            return Merged(None)
        if keep and isinstance(loaded, dict) and META_KEY in loaded:
            merged[META_KEY] = loaded[META_KEY]  # the copy's metadata, newer than the request's
        text = _json.dumps(merged)
    limit = changes.max_size
    if limit is not None:
        size = byte_size(text)
        if size > limit and size > (0 if stored is None else byte_size(stored)):
            raise SessionTooLarge(size, limit, "max_size")
    return Merged(text, keep)


def with_origin(text: str, origin: str) -> str:
    """A rotation's new session (JSON) with its metadata naming the id it came from, so
    that a logout ends that id too, should the rotation have failed to retire it."""
    data = _json.loads(text)
    meta = None if data is None else data.get(META_KEY)
    if data is None or not isinstance(meta, dict):
        return text  # no metadata to carry it (a store used without the middleware)
    data[META_KEY] = {**meta, ORIGIN: origin}
    return _json.dumps(data)


def origin_of(text: str) -> str | None:
    """The id a session's JSON says it was rotated from, if any."""
    data = _json.loads(text)
    meta = None if data is None else data.get(META_KEY)
    origin = meta.get(ORIGIN) if isinstance(meta, dict) else None
    return origin if isinstance(origin, str) else None


def owner_in(meta: object) -> str | None:
    """The owner a session's metadata (the ``META_KEY`` value, as a dict) names, if any."""
    owner = meta.get(OWNER) if isinstance(meta, dict) else None
    return owner if isinstance(owner, str) and owner else None


def owner_of_data(data: Mapping[str, Any]) -> str | None:
    """The owner of a session about to be saved whole."""
    return owner_in(data.get(META_KEY))


def owner_of_changes(changes: Changes) -> str | None:
    """The owner of the session a rotation creates: the request's metadata names it (a
    rotation's changes always carry the metadata the core wrote)."""
    return owner_in(changes.set.get(META_KEY))


def session_info(
    store_key: str, text: str | bytes, expires_at: datetime, last_seen: datetime
) -> SessionInfo:
    """What ``sessions_of`` lists for the session stored under ``store_key`` as ``text``
    (its JSON), with the store's expiry and the instant it was last seen."""
    data = _json.loads(text)
    meta = data.get(META_KEY) if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    created = meta.get("c")
    device = meta.get(DEVICE)
    return SessionInfo(
        handle=handle_of(store_key),
        created_at=datetime.fromtimestamp(created, tz=expires_at.tzinfo)
        if isinstance(created, (int, float)) and not isinstance(created, bool)
        else last_seen,
        last_seen=last_seen,
        expires_at=expires_at,
        device=device if isinstance(device, str) else None,
    )


def most_recent_first(infos: list[SessionInfo]) -> list[SessionInfo]:
    """The order ``sessions_of`` lists in: the most recently seen first (then by handle,
    so that the order is stable)."""
    return sorted(infos, key=lambda info: (-info.last_seen.timestamp(), info.handle))


def byte_size(text: str | bytes) -> int:
    """Bytes of UTF-8 in ``text``."""
    if isinstance(text, bytes):
        return len(text)
    return len(text) if text.isascii() else len(text.encode("utf-8"))
