"""What the middleware reads of a request, the same in every shell: the
:class:`RequestView` a shell builds once per request (its headers walked once), and the
:class:`RequestInfo` a ``skip_persistence`` predicate sees."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .stores._budget import StoreBudget

logger = logging.getLogger("lazysession")


@dataclass(slots=True)  # built per request: frozen ones cost twice as much
class RequestInfo:
    """Method, path and headers of a request; header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]


SkipPredicate = Callable[[RequestInfo], bool]


class RequestView:
    """The request as the middleware reads it, read once: the session cookie header and
    the ``Authorization`` header (for the default, Bearer, predicate). A shell's subclass
    reads them (setting every slot) and says where the response goes and what a
    ``skip_persistence`` predicate sees, built on first use."""

    __slots__ = ("_budget", "_info", "authorization", "cookie")

    cookie: str | None
    """Every ``Cookie`` header of the request, joined; None without one."""
    authorization: str | None
    """The first ``Authorization`` header; None without one."""
    _info: RequestInfo | None

    def host(self) -> str | None:
        """The ``Host`` header, or the server's name."""
        raise NotImplementedError

    def spending(self) -> AbstractContextManager[None]:
        """Around the middleware's own store calls for this request (the load, then the
        save): they share one store ``timeout`` (see ``stores/_budget.py``)."""
        budget: StoreBudget | None = getattr(self, "_budget", None)
        if budget is None:
            budget = self._budget = StoreBudget()
        return budget.spending()

    def user_agent(self) -> str | None:
        """The ``User-Agent`` header (read only for a login's device label)."""
        return self.info().headers.get("user-agent")

    def info(self) -> RequestInfo:
        """What a ``skip_persistence`` predicate sees, built once."""
        if self._info is None:
            self._info = self._build_info()
        return self._info

    def _build_info(self) -> RequestInfo:
        raise NotImplementedError


def is_bearer_request(request: RequestInfo) -> bool:
    """True for ``Authorization: Bearer ...`` (any case): token clients keep no session."""
    return is_bearer_authorization(request.headers.get("authorization", ""))


def is_bearer_authorization(value: str) -> bool:
    """Whether an ``Authorization`` header's value uses the Bearer scheme."""
    scheme, _, _ = value.lstrip().partition(" ")
    return scheme.lower() == "bearer"


def never(request: RequestInfo) -> bool:
    """A ``skip_persistence`` that persists every session, Bearer requests included."""
    return False


def is_local_host(host: str) -> bool:
    """True for localhost, loopback addresses and ``*.localhost`` (port ignored)."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class InsecureCookieWarning:
    """Warns once, the first time a session cookie without ``Secure`` (``https_only=False``)
    is sent to a host that is not this machine."""

    __slots__ = ("done",)

    def __init__(self, secure: bool) -> None:
        self.done = secure

    def check(self, host: str | None) -> None:
        self.done = True
        if host and not is_local_host(host):
            logger.warning(
                "lazysession: the session cookie is sent without Secure (https_only=False) "
                "while serving %s; set https_only=True behind HTTPS so the cookie never "
                "travels in clear text",
                host,
            )
