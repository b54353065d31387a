"""The default store: the whole session travels, signed, in the cookie (as in Starlette)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from .._cookies import BROWSER_COOKIE_LIMIT
from .._errors import ConfigurationError, SessionTooLarge
from ._base import Changes, Merge, Record, Store, SyncStore

__all__ = ["BROWSER_COOKIE_LIMIT", "CookieStore"]


class CookieStore(Store):
    """Keeps nothing server side: the middleware signs the session into the cookie.

    So there is nothing to read, save, rotate, touch, delete or sweep here: those calls are
    no-ops and ``count`` is 0. A session whose cookie would pass ``max_cookie_size`` (at
    most the 4096 bytes a browser keeps) raises :class:`~lazysession.SessionTooLarge`
    instead of being silently dropped by the browser.

    It cannot revoke a cookie: ``invalidate()`` expires the browser's copy, but a copy
    taken earlier (a stolen cookie) stays valid until its ``max_age`` has passed. A
    server-side store deletes the session itself, so every copy of its cookie stops working.
    """

    client_side: ClassVar[bool] = True

    def __init__(self, *, max_cookie_size: int = BROWSER_COOKIE_LIMIT) -> None:
        if max_cookie_size < 64:
            raise ConfigurationError("max_cookie_size must leave room for a signed session")
        if max_cookie_size > BROWSER_COOKIE_LIMIT:
            raise ConfigurationError(
                f"max_cookie_size={max_cookie_size}: browsers drop cookies over "
                f"{BROWSER_COOKIE_LIMIT} bytes of name and value, so none would come back"
            )
        self.max_cookie_size = max_cookie_size
        self._sync = _SyncCookieStore()

    def check_size(self, cookie_name: str, value: str) -> None:
        """Raise :class:`~lazysession.SessionTooLarge` when the cookie ``cookie_name=value``
        is past ``max_cookie_size``, which browsers would drop."""
        size = len(cookie_name) + 1 + len(value)
        if size > self.max_cookie_size:
            raise SessionTooLarge(size, self.max_cookie_size, "a browser cookie")

    async def read(self, session_id: str) -> Record | None:
        """Nothing: the session is in the cookie, which the store never sees."""
        return None

    async def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        """False: the cookie carries its own expiry."""
        return False

    async def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        """``GONE``: the cookie is the session, rewritten whole."""
        return Merge.GONE

    async def rotate(
        self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime
    ) -> Merge:
        """``GONE``: the cookie is the session, rewritten whole."""
        return Merge.GONE

    async def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        """Nothing to store: the data goes in the cookie."""
        return None

    async def delete(self, session_id: str) -> None:
        """Nothing to delete: the cookie is expired instead."""
        return None

    async def sweep(self) -> int:
        """0: nothing is held, so nothing expires here."""
        return 0

    async def count(self) -> int:
        """0: the sessions are in the browsers' cookies."""
        return 0

    @property
    def sync(self) -> SyncStore:
        """The blocking side, as empty."""
        return self._sync


class _SyncCookieStore(SyncStore):
    def read(self, session_id: str) -> Record | None:
        return None

    def touch(self, session_id: str, *, expires_at: datetime, base: object = None) -> bool:
        return False

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return Merge.GONE

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        return Merge.GONE

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        return None

    def delete(self, session_id: str) -> None:
        return None

    def sweep(self) -> int:
        return 0

    def count(self) -> int:
        return 0
