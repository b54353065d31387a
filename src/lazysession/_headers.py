"""The headers a response gets from its session, the same on every shell; each shell
edits its own kind of headers through :class:`ResponseHeaders`.

Rules for the session headers:
- ``Set-Cookie`` goes out with the cookie the core chose, once the store confirmed it.
- ``Vary: Cookie`` whenever the session was read or written: it joins the app's first
  ``Vary`` header (unless that already covers it), or is added.

Rules for shared caches (``SharedCaches``):
- A response that sends the session cookie (a new or rotated id, an expired cookie, the
  cookie store's data) is never left storable by a shared cache, whatever the app said:
  its ``Cache-Control`` loses ``public`` and ``s-maxage`` and gains ``private``. The
  cookie is a credential, added by the middleware rather than by the handler that chose
  ``public``; a proxy that kept it would log the next visitor in as this one.
- A response that read the session is made private the same way, unless
  ``private_reads=False``: then it keeps the app's ``Cache-Control`` and gets only
  ``Vary: Cookie`` (Django's rule), for apps behind a cache that keys on the cookie.
- ``no-store``, or ``private`` unqualified, already keeps every shared cache out: such a
  header is left as the app wrote it. Every other directive (``max-age``, ``no-cache``,
  ``must-revalidate``, extensions) is kept, in its order; several ``Cache-Control``
  headers become one. ``CDN-Cache-Control`` and ``Surrogate-Control`` (RFC 9213), which
  the caches they name obey instead of ``Cache-Control``, are taken out: those caches
  then obey the private ``Cache-Control``. A response that never touched the session is
  left alone.
- Dropping an app's ``public`` or ``s-maxage`` logs one warning per middleware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from ._errors import ConfigurationError, logger

if TYPE_CHECKING:
    from ._identity import SessionEvent

TARGETED = ("cdn-cache-control", "surrogate-control")
"""Cache-Control fields for one kind of cache (RFC 9213), lower case; both 17 long."""

Target = TypeVar("Target")
Target_contra = TypeVar("Target_contra", contravariant=True)


@dataclass(slots=True)  # built per response: frozen ones cost twice as much
class Reply:
    """The headers a response gets from its session once the store work is done."""

    cookie: str | None
    """The ``Set-Cookie`` value to send; None: the browser's cookie stays as it is."""
    vary: bool
    """The session was read or written: ``Vary: Cookie``."""
    private: bool
    """The response must keep shared caches out (``SharedCaches.applies``)."""
    events: list[SessionEvent] | None = None
    """What the store work did to sessions, for ``on_event`` (None: nothing to tell)."""


class ResponseHeaders(Protocol[Target_contra]):
    """How a shell edits its kind of response headers (``target``: a header list, a
    framework's response), as the rules above need."""

    def add_cookie(self, target: Target_contra, value: str) -> None: ...

    def vary_on_cookie(self, target: Target_contra) -> None:
        """Add ``Cookie`` to the first ``Vary`` header, or add ``Vary: Cookie``."""

    def cache_control(self, target: Target_contra) -> list[str]:
        """The values of every ``Cache-Control`` header, in order."""

    def add_cache_control(self, target: Target_contra, value: str) -> None:
        """Add a ``Cache-Control`` header (there is none yet)."""

    def replace_cache_control(self, target: Target_contra, value: str) -> None:
        """Make ``value`` the only ``Cache-Control`` header."""

    def drop_targeted(self, target: Target_contra) -> None:
        """Remove every ``CDN-Cache-Control`` and ``Surrogate-Control`` header."""


def add_session_headers(
    edit: ResponseHeaders[Target], target: Target, reply: Reply, caches: SharedCaches
) -> None:
    """Give a response (``target``, edited by ``edit``) the headers of its ``reply``."""
    if reply.cookie is not None:
        edit.add_cookie(target, reply.cookie)
    if reply.vary:
        edit.vary_on_cookie(target)
    if reply.private:
        edit.drop_targeted(target)  # caches that obey these obey Cache-Control without them
        found = edit.cache_control(target)
        if not found:  # the usual case: nothing of the app's to keep
            edit.add_cache_control(target, "private")
            return
        value = caches.rewrite(found)
        if value is not None:
            edit.replace_cache_control(target, value)


@dataclass(frozen=True, slots=True)
class PrivateCacheControl:
    """The ``Cache-Control`` value a response must carry instead of the app's."""

    value: str
    dropped_public: bool
    """The app's ``public`` or ``s-maxage`` was taken out."""


_SHARED_ONLY = frozenset(("public", "s-maxage"))


def _directives(values: Iterable[str]) -> list[str]:
    """The directives of ``Cache-Control`` header values, in order, each as written
    (stripped); commas inside a quoted argument (``no-cache="a, b"``) do not split."""
    found: list[str] = []
    for value in values:
        start, quoted, escaped = 0, False, False
        for index, char in enumerate(value):
            if escaped:
                escaped = False
            elif quoted and char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                found.append(value[start:index].strip())
                start = index + 1
        found.append(value[start:].strip())
    return [directive for directive in found if directive]


def private_cache_control(values: Iterable[str]) -> PrivateCacheControl | None:
    """What ``Cache-Control`` (the header's ``values``, none if absent) must become so
    that no shared cache stores the response; None when it already keeps them out
    (``no-store``, or an unqualified ``private``)."""
    kept: list[str] = []
    dropped = False
    for directive in _directives(values):
        name = directive.split("=", 1)[0].strip().lower()
        if name == "no-store" or directive.lower() == "private":
            return None
        if name in _SHARED_ONLY:
            dropped = True
        elif name != "private":  # private="field": only those fields; we need it whole
            kept.append(directive)
    kept.append("private")
    return PrivateCacheControl(", ".join(kept), dropped)


class SharedCaches:
    """The shared-cache rules above, for one middleware (``private_reads`` is its option;
    it warns once)."""

    __slots__ = ("private_reads", "warned")

    def __init__(self, private_reads: object) -> None:
        if not isinstance(private_reads, bool):
            raise ConfigurationError(
                f"private_reads={private_reads!r}: expected True (responses that read the "
                "session are private) or False (they only get Vary: Cookie)"
            )
        self.private_reads = private_reads
        self.warned = False

    def applies(self, vary: bool, cookie: str | None) -> bool:
        """Whether a response whose outcome varies (``vary``: the session was used) and
        sends ``cookie`` must be made private."""
        return cookie is not None or (vary and self.private_reads)

    def rewrite(self, values: Iterable[str]) -> str | None:
        """The ``Cache-Control`` value to send instead of ``values``; None: keep them."""
        private = private_cache_control(values)
        if private is None:
            return None
        if private.dropped_public and not self.warned:
            self.warned = True
            logger.warning(
                "lazysession: a response marked Cache-Control: public (or s-maxage) sent or "
                "read the session, so it was made private: a shared cache must not hand one "
                "visitor's session cookie or page to the next. Keep such routes away from "
                "the session, or mark them private; private_reads=False lets responses that "
                "only read it stay public (varied by Cookie)"
            )
        return private.value
