"""The ASGI shell's header plumbing: reading a request's headers from the scope, and
editing a response's header list as the session-header rules (``_headers``) ask."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._cookies import vary_with_cookie
from ._headers import TARGETED
from ._request import RequestInfo
from ._types import Scope


class ScopeHeaders(Mapping[str, str]):
    """The request's headers by lower-case name, read from the ASGI scope on demand
    (most predicates look at one header; building a dict for them would cost more)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """Without a KeyError for an absent header: the usual case, on every request."""
        value = _joined_header(self._raw, name.lower().encode("latin-1"))
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key.decode("latin-1").lower() for key, _ in self._raw))

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._raw})


def _joined_header(raw: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    """Every value of the header named ``wanted`` (lower case), joined; None if absent.
    (Servers send names in lower case, as ASGI asks; other spellings are matched too.)"""
    size = len(wanted)
    found = [
        value.decode("latin-1")
        for key, value in raw
        if len(key) == size and (key == wanted or key.lower() == wanted)
    ]
    return ", ".join(found) if found else None


def request_info(scope: Scope) -> RequestInfo:
    return RequestInfo(
        method=scope.get("method", "GET"),
        path=scope.get("path", "/"),
        headers=ScopeHeaders(scope["headers"]),
    )


Read = tuple[bytes | None, bytes | None, bytes | None]


def read_headers(raw: list[tuple[bytes, bytes]]) -> Read:
    """The request's ``Cookie`` headers (joined), its first ``Authorization`` and ``Host``
    headers, in one walk over the scope's headers."""
    cookie = authorization = host = None
    for name, value in raw:
        if name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
        elif name == b"host":
            if host is None:
                host = value
        elif (
            len(name) == 13
            and authorization is None
            and (name == b"authorization" or name.lower() == b"authorization")
        ):
            authorization = value
    return cookie, authorization, host


_VARY = b"vary"
_CACHE_CONTROL = b"cache-control"
_TARGETED = tuple(name.encode() for name in TARGETED)
_EDITED = frozenset((_VARY, _CACHE_CONTROL, *_TARGETED))
VARY_COOKIE = (_VARY, b"Cookie")
PRIVATE = (_CACHE_CONTROL, b"private")


def untouched_by_rules(raw: list[tuple[bytes, bytes]]) -> bool:
    """Whether the response has no header the session-header rules edit (``Vary``,
    ``Cache-Control``, and the targeted ones): then they only add theirs, in order."""
    for name, _ in raw:
        size = len(name)
        if (size == 4 or size == 13 or size == 17) and name.lower() in _EDITED:
            return False
    return True


RawHeaderList = list[tuple[bytes, bytes]]


class RawHeaders:
    """Edits an ASGI response's header list as the session-header rules ask."""

    __slots__ = ()

    def add_cookie(self, raw: RawHeaderList, value: str) -> None:
        raw.append((b"set-cookie", value.encode("latin-1")))

    def vary_on_cookie(self, raw: RawHeaderList) -> None:
        for index, (name, value) in enumerate(raw):
            if name.lower() == _VARY:
                raw[index] = (name, vary_with_cookie(value.decode("latin-1")).encode("latin-1"))
                return
        raw.append((_VARY, b"Cookie"))

    def cache_control(self, raw: RawHeaderList) -> list[str]:
        return [
            value.decode("latin-1")
            for name, value in raw
            if len(name) == 13 and (name == _CACHE_CONTROL or name.lower() == _CACHE_CONTROL)
        ]

    def add_cache_control(self, raw: RawHeaderList, value: str) -> None:
        raw.append((_CACHE_CONTROL, value.encode("latin-1")))

    def drop_targeted(self, raw: RawHeaderList) -> None:
        if any(len(name) == 17 and name.lower() in _TARGETED for name, _ in raw):
            raw[:] = [(n, v) for n, v in raw if len(n) != 17 or n.lower() not in _TARGETED]

    def replace_cache_control(self, raw: RawHeaderList, value: str) -> None:
        raw[:] = [
            (name, item) for name, item in raw if len(name) != 13 or name.lower() != _CACHE_CONTROL
        ]
        raw.append((_CACHE_CONTROL, value.encode("latin-1")))


RAW_HEADERS = RawHeaders()
