"""One checker per kind of setting value, for :class:`~lazysession.config.Settings`.

Rules:
- Each takes what a mapping may hold (text from the environment, or a typed value from a
  dict or Flask's config) and returns the value, typed, or raises
  :class:`~lazysession.ConfigurationError` naming ``label`` (the setting's name).
- A secret key's value never appears in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from ._errors import ConfigurationError
from ._store_urls import check_store_url

C = TypeVar("C", bound=str)

MIN_SECRET_LENGTH = 32
"""The fewest characters a secret key may have."""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _unwrap(value: Any) -> Any:
    """The value behind a pydantic ``SecretStr`` (its ``str()`` is asterisks)."""
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


def _boolean(label: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{label}={value!r}: expected true or false")


def _seconds(
    label: str, value: object, *, allow_none: bool, allow_zero: bool = False
) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if allow_none:
            return None
        raise ConfigurationError(f"{label} is empty: expected a number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{label}={value!r}: expected a whole number of seconds")
    try:
        seconds = int(value)
    except ValueError:
        raise ConfigurationError(
            f"{label}={value!r}: expected a whole number of seconds"
            + (", or none" if allow_none else "")
        ) from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise ConfigurationError(f"{label}={value!r}: expected {least} seconds")
    return seconds


def _choice(label: str, value: object, choices: tuple[C, ...]) -> C:
    """``value``, lower-cased, as the one of ``choices`` it names."""
    lowered = str(value).strip().lower()
    for choice in choices:
        if lowered == choice:
            return choice
    expected = ", ".join(choices[:-1]) + " or " + choices[-1]
    raise ConfigurationError(f"{label}={value!r}: expected {expected}")


def _cookie_name(label: str, value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise ConfigurationError(
            f"{label}={value!r}: a cookie name is letters, digits and !#$%&'*+-.^_`|~"
        )
    return value


def _domain(label: str, value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if any(c in text for c in ";,\r\n \t"):
        raise ConfigurationError(f"{label}={value!r}: expected a host name such as example.com")
    return text or None


def _store_url(label: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{label} is empty: expected a store URL such as memory://")
    try:
        return check_store_url(value.strip())
    except ConfigurationError as error:
        raise ConfigurationError(f"{label}: {error}") from None


def _secret_keys(label: str, value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        keys = [str(_unwrap(key)).strip() for key in value]
    else:
        keys = [key.strip() for key in str(value).split(",")]
    keys = [key for key in keys if key]
    if not keys:
        raise ConfigurationError(f"{label} is empty: {_HOW_TO_MAKE_A_KEY}")
    if any(len(key) < MIN_SECRET_LENGTH for key in keys):
        raise ConfigurationError(f"{label} is too short: use {_HOW_TO_MAKE_A_KEY}")
    return keys


_HOW_TO_MAKE_A_KEY = (
    f"a random string of {MIN_SECRET_LENGTH} characters or more, e.g. from "
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


def _check_together(
    label: Callable[[str], str], same_site: str, https_only: bool, partitioned: bool
) -> None:
    """Combinations browsers refuse: they drop the cookie without a word."""
    if same_site == "none" and not https_only:
        raise ConfigurationError(
            f"{label('same_site')}=none needs {label('https_only')}=true: browsers refuse a "
            "SameSite=None cookie without Secure"
        )
    if partitioned and not https_only:
        raise ConfigurationError(
            f"{label('partitioned')}=true needs {label('https_only')}=true: browsers refuse a "
            "partitioned cookie without Secure"
        )
