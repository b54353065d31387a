"""The store contract: what every back end promises, async for ASGI and sync for WSGI.

Rules every store keeps:
- ``session_id`` is the key the core derived from the cookie (a SHA-256 of the random id);
  stores never see the cookie itself.
- ``read``/``load`` never return an expired session, whether or not it has been swept.
- ``update`` merges one request's changes onto the latest stored copy, atomically, so
  two requests that change different keys of one session both keep their change (on
  the same key, the last writer wins); it never brings back a session that is gone.
- ``touch`` moves the expiry of a live session without rewriting its data; it never
  brings back a session that has expired or been deleted.
- ``save`` replaces the session and its expiry in one step: readers see the old or the
  new session, never a mix.
- ``sweep`` deletes every expired session, in bounded batches, and returns how many; it
  is safe to run from many processes at once.
- ``count`` counts what is held, expired-but-unswept included.
- Data is JSON, never pickle; a value that is not JSON-serialisable fails before any I/O.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import StoreError

if TYPE_CHECKING:
    from .._session import Changes


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class Record:
    """A stored session: its data and when it expires. ``version``, where a store keeps
    one, names this copy: an ``update`` based on it (``Changes.base``) may then store the
    writer's whole session instead of merging, when no other write came in between."""

    data: dict[str, Any]
    expires_at: datetime
    version: object = None


class StoreErrors:
    """``with StoreErrors("loading a session", (DriverError, ...)):`` raises the back end's
    own errors as :class:`~lazysession.StoreError`, naming what failed. (A class rather
    than a generator-based context manager: it wraps every store call.)"""

    __slots__ = ("action", "errors")

    def __init__(self, action: str, errors: tuple[type[BaseException], ...]) -> None:
        self.action = action
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if error is not None and isinstance(error, self.errors):
            raise StoreError(f"{self.action} failed: {type(error).__name__}: {error}") from error


class SyncStore(abc.ABC):
    """The blocking side of a store, for WSGI servers and command-line tools."""

    @abc.abstractmethod
    def read(self, session_id: str) -> Record | None: ...

    def load(self, session_id: str) -> dict[str, Any] | None:
        record = self.read(session_id)
        return None if record is None else record.data

    @abc.abstractmethod
    def touch(self, session_id: str, *, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> bool:
        """Merge ``changes``; False (and nothing written) when the session is gone."""

    @abc.abstractmethod
    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    def delete(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def sweep(self) -> int: ...

    @abc.abstractmethod
    def count(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections the store opened itself."""


class Store(abc.ABC):
    """A session store. Its methods are async (ASGI); ``store.sync`` is its blocking side."""

    client_side: ClassVar[bool] = False
    """True when the data travels in the cookie and the store holds nothing."""

    @abc.abstractmethod
    async def read(self, session_id: str) -> Record | None: ...

    async def load(self, session_id: str) -> dict[str, Any] | None:
        record = await self.read(session_id)
        return None if record is None else record.data

    @abc.abstractmethod
    async def touch(self, session_id: str, *, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> bool:
        """Merge ``changes``; False (and nothing written) when the session is gone."""

    @abc.abstractmethod
    async def save(
        self, session_id: str, data: dict[str, Any], *, expires_at: datetime
    ) -> None: ...

    @abc.abstractmethod
    async def delete(self, session_id: str) -> None: ...

    @abc.abstractmethod
    async def sweep(self) -> int: ...

    @abc.abstractmethod
    async def count(self) -> int: ...

    async def aclose(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections the store opened itself."""

    @property
    @abc.abstractmethod
    def sync(self) -> SyncStore:
        """The same store, with blocking methods."""
