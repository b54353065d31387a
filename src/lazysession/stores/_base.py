"""The store contract: what every back end promises, async for ASGI and sync for WSGI.

Rules every store keeps:
- ``session_id`` is the key the core derived from the cookie (a SHA-256 of the random id);
  stores never see the cookie itself.
- ``load`` never returns an expired session, whether or not it has been swept yet.
- ``save`` replaces the session and its expiry in one step: readers see the old or the
  new session, never a mix.
- ``sweep`` deletes every expired session, in bounded batches, and returns how many; it
  is safe to run from many processes at once.
- ``count`` counts what is held, expired-but-unswept included.
- Data is JSON, never pickle; a value that is not JSON-serialisable fails before any I/O.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, ClassVar


class SyncStore(abc.ABC):
    """The blocking side of a store, for WSGI servers and command-line tools."""

    @abc.abstractmethod
    def load(self, session_id: str) -> dict[str, Any] | None: ...

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
    async def load(self, session_id: str) -> dict[str, Any] | None: ...

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
