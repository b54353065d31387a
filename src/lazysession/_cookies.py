"""Reading the ``Cookie`` header and writing ``Set-Cookie``, the way browsers do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ._errors import ConfigurationError

SameSite = Literal["lax", "strict", "none"]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"

BROWSER_COOKIE_LIMIT = 4096
"""Bytes of name and value a browser keeps per cookie; past it the cookie is dropped
(RFC 6265bis asks for at least 4096, and the major browsers keep no more)."""


def cookie_values(header: str, name: str) -> list[str]:
    """Every value sent under ``name``, in the order the browser sent them.

    Browsers send the cookie with the most specific path first, and several cookies may
    share a name (other paths, parent domains); the caller tries each in turn.
    """
    if name not in header:
        return []
    values = []
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values.append(value)
    return values


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """The session cookie's name and attributes, validated once at start-up."""

    name: str = "session"
    path: str = "/"
    domain: str | None = None
    max_age: int | None = 14 * 24 * 60 * 60
    same_site: SameSite = "lax"
    secure: bool = False
    partitioned: bool = False
    httponly: bool = True
    _attributes: str = field(init=False, repr=False, compare=False)
    """Everything after the value, rendered once: it is the same on every response."""

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.name):
            raise ConfigurationError(f"session_cookie={self.name!r} is not a valid cookie name")
        if self.same_site not in ("lax", "strict", "none"):
            raise ConfigurationError(
                f"same_site={self.same_site!r}: expected 'lax', 'strict' or 'none'"
            )
        for attr in (self.path, self.domain or ""):
            if any(c in attr for c in ";\r\n"):
                raise ConfigurationError(f"cookie attribute {attr!r} contains ';' or a newline")
        if self.max_age is not None and not isinstance(self.max_age, int):
            raise ConfigurationError("max_age must be a whole number of seconds, or None")
        object.__setattr__(self, "_attributes", self._render_attributes())

    def _render_attributes(self) -> str:
        parts = [f"path={self.path}"]
        if self.httponly:
            parts.append("httponly")
        parts.append(f"samesite={self.same_site}")
        if self.secure:
            parts.append("secure")
        if self.domain is not None:
            parts.append(f"domain={self.domain}")
        if self.partitioned:
            parts.append("partitioned")
        return "; ".join(parts)

    def render(self, value: str, max_age: int | None = None) -> str:
        """A ``Set-Cookie`` value that keeps ``value`` for ``max_age`` seconds, or, with
        None, until the browser closes."""
        lifetime = f"; Max-Age={max_age}" if max_age is not None else ""
        return f"{self.name}={value}{lifetime}; {self._attributes}"

    def render_expired(self) -> str:
        """A ``Set-Cookie`` value that makes the browser drop the cookie."""
        return f"{self.name}=null; expires={_EXPIRED}; Max-Age=0; {self._attributes}"


def vary_with_cookie(vary: str | None) -> str:
    """The ``Vary`` header value once ``Cookie`` is added to it (if it is not covered)."""
    if not vary:
        return "Cookie"
    tokens = {token.strip().lower() for token in vary.split(",")}
    return vary if "cookie" in tokens or "*" in tokens else f"{vary}, Cookie"
