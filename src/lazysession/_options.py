"""The options every shell takes, each checked once, when the middleware is built.

Rules:
- Starlette's parameters take what Starlette takes: ``max_age`` may be 0 or negative
  (every session then expires at once, and the browser is told to drop its cookie) or
  ``None``; lazysession also takes a ``timedelta`` wherever it takes seconds.
- A value of the wrong type or out of range raises :class:`ConfigurationError` naming
  the option and what it takes, never a bare ``TypeError`` or ``ValueError``.
- ``store`` may be a URL (``"redis://..."``, ``"sqlite+aiosqlite:///..."``): the store
  it names is built, as ``store_from_url`` does.
"""

from __future__ import annotations

from datetime import timedelta

from ._defaults import STORE_ERROR_POLICIES
from ._errors import ConfigurationError
from .stores import CookieStore, Store


def seconds_option(
    name: str, value: object, *, positive: bool = True, allow_none: bool = True
) -> int | None:
    """``value`` as whole seconds: an ``int`` or a ``timedelta`` (``None`` where allowed);
    ``positive`` refuses 0 and below. Anything else is a ConfigurationError naming
    ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds != int(seconds):
            raise ConfigurationError(f"{name}={value!r}: use whole seconds")
        value = int(seconds)
    if not isinstance(value, int) or isinstance(value, bool):
        kinds = "an int or a timedelta" + (", or None" if allow_none else "")
        raise ConfigurationError(
            f"{name}={value!r}: expected a number of seconds ({kinds}), not {type(value).__name__}"
        )
    if positive and value <= 0:
        raise ConfigurationError(f"{name}={value!r}: must be a positive number of seconds")
    return value


def fraction_option(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigurationError(
            f"{name}={value!r}: expected a fraction of the idle window, from 0 to 1"
        )
    return float(value)


def size_option(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name}={value!r}: expected a positive number of bytes")
    return value


def interval_option(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(
            f"{name}={value!r}: expected seconds between sweeps; 0 or None disables them"
        )
    return float(value)


def store_option(name: str, value: object) -> Store | CookieStore:
    """The ``store`` option: a store, a URL naming one, or None (the cookie store)."""
    if value is None:
        return CookieStore()
    if isinstance(value, (Store, CookieStore)):
        return value
    if isinstance(value, str):
        from .config import store_from_url

        return store_from_url(value)
    hint = "; pass an instance, e.g. MemoryStore()" if isinstance(value, type) else ""
    raise ConfigurationError(
        f"{name}={value!r}: expected a store (MemoryStore(), SQLAlchemyStore(...), "
        f"RedisStore(...)) or a URL such as 'redis://localhost:6379/0'{hint}"
    )


def encrypt_option(value: object) -> bool:
    """The ``encrypt`` option: a bool; True needs the ``encryption`` extra."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"encrypt={value!r}: expected True or False")
    if value:
        from ._crypto import require_cryptography

        require_cryptography()
    return value


def check_policy(on_store_error: str) -> str:
    if on_store_error not in STORE_ERROR_POLICIES:
        raise ConfigurationError("on_store_error must be '503' or 'empty'")
    return on_store_error


def predicate_option(name: str, value: object) -> None:
    if not callable(value):
        raise ConfigurationError(f"{name}={value!r}: expected a predicate over the request")


def owner_cap_option(value: object, store: Store | CookieStore) -> int | None:
    """``max_sessions_per_owner``: None, or a whole number of sessions (at least 1) on a
    store that keeps an index of owners."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"max_sessions_per_owner={value!r}: expected a whole number of sessions (1 or "
            "more), or None for no cap"
        )
    if not keeps_owners(store):
        raise ConfigurationError(
            f"max_sessions_per_owner needs a store that keeps an index of owners; "
            f"{type(store).__name__} keeps none"
        )
    return value


def keeps_owners(store: Store | CookieStore) -> bool:
    """Whether ``store`` implements the owner index (``sessions_of`` and the revokes)."""
    return isinstance(store, Store) and store.keeps_owners


def event_option(value: object) -> object:
    """``on_event``: None, or a callable (sync or async) taking a ``SessionEvent``."""
    if value is not None and not callable(value):
        raise ConfigurationError(
            f"on_event={value!r}: expected a function taking a SessionEvent, or None"
        )
    return value


def flag_option(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name}={value!r}: expected True or False")
    return value
