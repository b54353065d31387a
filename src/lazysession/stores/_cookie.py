"""The default: the whole session travels, signed, in the cookie (as in Starlette).

Rules:
- ``CookieStore`` is not a :class:`~lazysession.Store`: it names the core's *cookie mode*,
  in which nothing is kept server side, so no store method is ever called (nothing to
  read, write, touch, sweep or close). ``store=None`` means the same.
- A session whose cookie would pass ``max_cookie_size`` (at most the 4096 bytes a browser
  keeps) raises :class:`~lazysession.SessionTooLarge` instead of being silently dropped
  by the browser.
"""

from __future__ import annotations

from typing import ClassVar

from .._cookies import BROWSER_COOKIE_LIMIT
from .._errors import ConfigurationError, SessionTooLarge

__all__ = ["BROWSER_COOKIE_LIMIT", "CookieStore"]


class CookieStore:
    """Keeps nothing server side: the middleware signs the session into the cookie.

    A session whose cookie would pass ``max_cookie_size`` (at most the 4096 bytes a
    browser keeps) raises :class:`~lazysession.SessionTooLarge` instead of being silently
    dropped by the browser.

    It cannot revoke a cookie: ``invalidate()`` expires the browser's copy, but a copy
    taken earlier (a stolen cookie) stays valid until its ``max_age`` has passed. A
    server-side store deletes the session itself, so every copy of its cookie stops working.
    """

    client_side: ClassVar[bool] = True
    """The data travels in the cookie: there is no store to call."""
    in_process: ClassVar[bool] = False
    """No session lives in this process either: each is in its browser's cookie."""

    def __init__(self, *, max_cookie_size: int = BROWSER_COOKIE_LIMIT) -> None:
        if max_cookie_size < 64:
            raise ConfigurationError("max_cookie_size must leave room for a signed session")
        if max_cookie_size > BROWSER_COOKIE_LIMIT:
            raise ConfigurationError(
                f"max_cookie_size={max_cookie_size}: browsers drop cookies over "
                f"{BROWSER_COOKIE_LIMIT} bytes of name and value, so none would come back"
            )
        self.max_cookie_size = max_cookie_size

    def check_size(self, cookie_name: str, value: str) -> None:
        """Raise :class:`~lazysession.SessionTooLarge` when the cookie ``cookie_name=value``
        is past ``max_cookie_size``, which browsers would drop."""
        size = len(cookie_name) + 1 + len(value)
        if size > self.max_cookie_size:
            raise SessionTooLarge(size, self.max_cookie_size, "a browser cookie")

    def __repr__(self) -> str:
        """The class name and the cookie size limit."""
        return f"CookieStore(max_cookie_size={self.max_cookie_size})"
