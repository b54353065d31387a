"""Every default and every choice-of-names the options take, in one place: the ASGI and
WSGI middlewares, the Flask interface, ``Settings`` and the core all read them here.

Rules:
- A default is written once, here; a module that needs it imports it (``_expiry``'s
  ``DEFAULT_LIFETIME``, ``_core``'s ``DEFAULT_MAX_SIZE`` are these values).
- The cookie's name is one setting under three spellings, each its layer's convention:
  ``session_cookie`` (the middleware, Starlette's name), ``cookie_name`` (``Settings``,
  ``LAZYSESSION_COOKIE_NAME``) and ``CookieSettings.name`` (the core); its default is
  :data:`COOKIE_NAME`.
- The ``Literal`` types here are the ones the middleware's signature and ``Settings`` use,
  so ``SessionMiddleware(app, **settings.options())`` type-checks.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

SameSite = Literal["lax", "strict", "none"]
"""The ``SameSite`` attributes a session cookie may carry."""
StoreErrorPolicy = Literal["503", "empty"]
"""What a request gets when the store fails: a 503, or an empty session never saved."""

SAME_SITES: Final[tuple[SameSite, ...]] = get_args(SameSite)
STORE_ERROR_POLICIES: Final[tuple[StoreErrorPolicy, ...]] = get_args(StoreErrorPolicy)

COOKIE_NAME: Final = "session"
"""The session cookie's name (Starlette's)."""
LIFETIME: Final = 14 * 24 * 60 * 60
"""A session's absolute lifetime in seconds, ``max_age`` (14 days, as in Starlette)."""
SWEEP_INTERVAL: Final = 300
"""Seconds between expiry sweeps of a server-side store."""
TOUCH_AFTER: Final = 0.5
"""Under an idle timeout, the share of the idle window that must pass before a read moves
the expiry (a touch)."""
MAX_SIZE: Final = 64 * 1024
"""Bytes of JSON a server-side session may hold unless ``max_size`` says otherwise."""
SAME_SITE: Final[SameSite] = "lax"
ON_STORE_ERROR: Final[StoreErrorPolicy] = "503"
STORE_URL: Final = "cookie://"
"""``Settings``' store: the cookie store."""
