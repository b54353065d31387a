"""Reading the ``Cookie`` header and writing ``Set-Cookie``, the way browsers do.

Rules:
- A request offers at most ``SAME_NAME_LIMIT`` values of the cookie's name (the first it
  sent), and reading a header costs time linear in its length.
- Settings a browser would refuse (RFC 6265bis: cookie name prefixes, attribute syntax;
  ``SameSite=None`` and ``Partitioned`` only with ``Secure``) fail when they are built,
  naming the rule: a browser drops such a cookie silently, so no session would ever last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import _defaults
from ._defaults import SAME_SITES, SameSite
from ._errors import ConfigurationError

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
"""RFC 6265bis ``av-octet``: printable ASCII and space, but no ';'."""
ATTRIBUTE_LIMIT = 1024
"""Bytes of an attribute value past which a browser ignores the attribute (RFC 6265bis)."""
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"

BROWSER_COOKIE_LIMIT = 4096
"""Bytes of name and value a browser keeps per cookie; past it the cookie is dropped
(RFC 6265bis asks for at least 4096, and the major browsers keep no more)."""


SAME_NAME_LIMIT = 4
"""Values of the session cookie's name a request may offer; the rest are never looked at.

A browser holds several cookies of one name only when a site set them for different
paths or for a parent domain as well, and sends the one of the most specific path first
(then the oldest): the first few are the ones that can matter. Past them, each value
would cost a signature check, so a header of forged values could buy that many HMACs."""

_SPLIT_UP_TO = 1024
"""Headers up to this size are split in Python (the fastest way for the usual few
cookies); longer ones are searched with a compiled pattern, which steps over cookies of
other names without a Python step for each."""


def cookie_values(header: str, name: str) -> list[str]:
    """The values sent under ``name``, in the order the browser sent them, at most
    ``SAME_NAME_LIMIT`` (the first ones): the caller tries each in turn.

    A cookie is ``name=value`` between semicolons, with spaces or tabs allowed around the
    name and the value; double quotes around a value are removed. The cost is linear in
    the header's length, however many cookies it holds.
    """
    if name not in header:
        return []
    if len(header) <= _SPLIT_UP_TO:
        return _split_values(header, name)
    return _searched_values(header, name)


def _split_values(header: str, name: str) -> list[str]:
    values: list[str] = []
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        if sep and key.strip(" \t") == name:
            values.append(_unquoted(value))
            if len(values) == SAME_NAME_LIMIT:
                break
    return values


_patterns: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {}


def _searched_values(header: str, name: str) -> list[str]:
    found = _patterns.get(name)
    if found is None:
        cookie = f"[ \\t]*{re.escape(name)}[ \\t]*="
        found = _patterns[name] = (re.compile(cookie), re.compile(";" + cookie))
    first, later = found
    values: list[str] = []
    end = 0
    match = first.match(header)
    if match is not None:
        end = _value_end(header, match.end())
        values.append(_unquoted(header[match.end() : end]))
    while len(values) < SAME_NAME_LIMIT:
        match = later.search(header, end)
        if match is None:
            break
        end = _value_end(header, match.end())
        values.append(_unquoted(header[match.end() : end]))
    return values


def _value_end(header: str, start: int) -> int:
    end = header.find(";", start)
    return len(header) if end < 0 else end


def _unquoted(value: str) -> str:
    value = value.strip(" \t")  # only these: str.strip() would take \xa0, \x85, \x0b ...
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """The session cookie's name and attributes, validated once at start-up."""

    name: str = _defaults.COOKIE_NAME
    path: str = "/"
    domain: str | None = None
    max_age: int | None = _defaults.LIFETIME
    same_site: SameSite = _defaults.SAME_SITE
    secure: bool = False
    partitioned: bool = False
    httponly: bool = True
    _attributes: str = field(init=False, repr=False, compare=False)
    """Everything after the value, rendered once: it is the same on every response."""
    _expired: str = field(init=False, repr=False, compare=False)
    """``render_expired()``'s value, rendered once."""

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.name):
            raise ConfigurationError(f"session_cookie={self.name!r} is not a valid cookie name")
        if self.same_site not in SAME_SITES:
            raise ConfigurationError(
                f"same_site={self.same_site!r}: expected 'lax', 'strict' or 'none'"
            )
        if self.max_age is not None and not isinstance(self.max_age, int):
            raise ConfigurationError("max_age must be a whole number of seconds, or None")
        broken = self.broken_rule()
        if broken is not None:
            raise ConfigurationError(broken)
        object.__setattr__(self, "_attributes", self._render_attributes())
        expired = f"{self.name}=null; expires={_EXPIRED}; Max-Age=0; {self._attributes}"
        object.__setattr__(self, "_expired", expired)

    def broken_rule(self) -> str | None:
        """The browser rule these settings break, in words; None when a browser keeps the
        cookie. (Secure is ``https_only=True`` on the middleware, ``SESSION_COOKIE_SECURE``
        in Flask.)"""
        for name, value in (("path", self.path), ("domain", self.domain)):
            if value is None:
                continue
            if not _ATTRIBUTE_VALUE.fullmatch(value):
                hint = (
                    " (give an internationalised domain in its xn-- form)"
                    if name == "domain"
                    else ""
                )
                return (
                    f"{name}={value!r}: a cookie's {name} may hold only printable ASCII "
                    f"other than ';'{hint} (RFC 6265bis, cookie attributes)"
                )
            if len(value) > ATTRIBUTE_LIMIT:
                return (
                    f"{name} is {len(value)} bytes: browsers ignore a cookie attribute over "
                    f"{ATTRIBUTE_LIMIT} bytes (RFC 6265bis)"
                )
        if not self.path.startswith("/"):
            return (
                f"path={self.path!r}: a cookie path must start with '/', or browsers use "
                "the request's directory instead (RFC 6265bis, the Path attribute)"
            )
        prefix = self.name[:9].lower()
        insecure = "needs Secure (https_only=True), or browsers drop the cookie"
        if prefix.startswith("__host-"):
            if not self.secure:
                return f"a __Host- cookie name ({self.name!r}) {insecure} (RFC 6265bis)"
            if self.domain is not None:
                return (
                    f"a __Host- cookie name ({self.name!r}) allows no Domain attribute "
                    "(domain=None), or browsers drop the cookie (RFC 6265bis)"
                )
            if self.path != "/":
                return (
                    f"a __Host- cookie name ({self.name!r}) needs path='/', or browsers "
                    "drop the cookie (RFC 6265bis)"
                )
        if prefix == "__secure-" and not self.secure:
            return f"a __Secure- cookie name ({self.name!r}) {insecure} (RFC 6265bis)"
        if self.same_site == "none" and not self.secure:
            return f"SameSite=None {insecure} (RFC 6265bis)"
        if self.partitioned and not self.secure:
            return f"a Partitioned cookie {insecure} (CHIPS)"
        return None

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
        return self._expired


def vary_with_cookie(vary: str | None) -> str:
    """The ``Vary`` header value once ``Cookie`` is added to it (if it is not covered)."""
    if not vary:
        return "Cookie"
    tokens = {token.strip().lower() for token in vary.split(",")}
    return vary if "cookie" in tokens or "*" in tokens else f"{vary}, Cookie"
