"""What a ``skip_persistence`` predicate sees of a request, the same in ASGI and WSGI."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Method, path and headers of a request; header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]


SkipPredicate = Callable[[RequestInfo], bool]


def is_bearer_request(request: RequestInfo) -> bool:
    """True for ``Authorization: Bearer ...`` (any case): token clients keep no session."""
    scheme, _, _ = request.headers.get("authorization", "").lstrip().partition(" ")
    return scheme.lower() == "bearer"


def never(request: RequestInfo) -> bool:
    """A ``skip_persistence`` that persists every session, Bearer requests included."""
    return False
