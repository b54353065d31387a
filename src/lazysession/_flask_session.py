"""What ``flask.session`` is, and how a Flask response is edited: the parts of the Flask
shell (``lazysession.flask``) that are not the interface itself.

Rules:
- ``flask.session`` reads mark it accessed, as Flask's own session does; ``permanent`` is
  stored under ``_permanent`` and defaults to ``SESSION_PERMANENT`` without that default
  counting as a write; setting it again to the value the request found changes no cookie.
- A refusal (the documented 503, or the 409) replaces the view's response whole: its
  status, body and headers only.
"""

from __future__ import annotations

from typing import Any

import flask
from flask.sessions import SessionMixin
from werkzeug.exceptions import ServiceUnavailable

from ._core import Exchange
from ._environ import EnvironHeaders, EnvironView
from ._errors import UNAVAILABLE_BODY, SessionUnavailable
from ._headers import TARGETED
from ._request import RequestInfo
from ._session import Session
from ._shell import placeholder_class
from ._signing import store_key
from ._steps import UNAVAILABLE, Refusal

__all__ = [
    "RESPONSE_HEADERS",
    "FlaskSession",
    "FlaskView",
    "SessionUnavailableError",
    "UnavailableFlaskSession",
    "refuse",
]


class FlaskSession(Session, SessionMixin):
    """``flask.session``: lazysession's session with Flask's ``permanent`` and ``new``,
    and Flask-Session's ``sid``. Reads mark it accessed, as Flask's own session does."""

    new = False
    cookie_keys = frozenset({"_permanent"})  # permanent or not: a different cookie
    exchange: Exchange | None = None
    view: FlaskView | None = None
    """The request, as read by ``open_session`` for ``save_session``."""
    permanent_default = False
    """``session.permanent`` until the handler sets it (``SESSION_PERMANENT``)."""
    permanent_loaded = False
    """``session.permanent`` as the request found it."""

    def __getitem__(self, key: str) -> Any:
        """The value at ``key``; reading marks the session accessed."""
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` or ``default``; reading marks the session accessed."""
        self.accessed = True
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is set; asking marks the session accessed."""
        self.accessed = True
        return super().__contains__(key)

    @property
    def permanent(self) -> bool:
        """Flask's flag, stored under ``_permanent``; unset, ``SESSION_PERMANENT``."""
        return bool(self.get("_permanent", self.permanent_default))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    def cookie_changed(self) -> bool:
        """Whether ``permanent`` now differs from what the request found: only then does
        the cookie change for it (setting it again, as many apps do on every request,
        changes nothing)."""
        return super().cookie_changed() and self.permanent != self.permanent_loaded

    @property
    def sid(self) -> str | None:
        """The key the store holds this session under, as Flask-Session's ``sid``: a
        SHA-256 of the cookie's random id, so it is safe to log and useless as a cookie
        (``store.sync.delete(session.sid)`` ends the session). None while the session
        is new, and with the cookie store."""
        exchange = self.exchange
        if exchange is None or exchange.session_id is None:
            return None
        return store_key(exchange.session_id)

    def is_permanent(self) -> bool:
        """``permanent`` without marking the session read."""
        return bool(dict.get(self, "_permanent", self.permanent_default))


class SessionUnavailableError(SessionUnavailable, ServiceUnavailable):
    """Raised on use of a session the store could not load; Flask answers 503."""

    description = UNAVAILABLE_BODY.decode().strip()

    def __init__(self) -> None:
        retry_after = UNAVAILABLE.retry_after
        super().__init__(retry_after=None if retry_after is None else int(retry_after))


UnavailableFlaskSession = placeholder_class(FlaskSession, SessionUnavailableError)


class FlaskView(EnvironView):
    """The request's headers read once from its environ; a predicate sees Flask's
    ``request.method`` and ``request.path``."""

    __slots__ = ("request",)

    def __init__(self, request: flask.Request) -> None:
        super().__init__(request.environ)
        self.request = request

    def _build_info(self) -> RequestInfo:
        request = self.request
        return RequestInfo(request.method, request.path, EnvironHeaders(request.environ))


def refuse(response: flask.Response, refusal: Refusal) -> None:
    """Answer ``refusal`` instead of the view's response: its status, body and headers
    only, as the other shells send it (none of the view's: a ``Cache-Control: public``
    would let a shared cache serve the refusal, a ``Content-Encoding`` would misname
    the body). Flask hands the response to ``save_session`` to change in place."""
    body = response.response
    response.headers.clear()
    response.direct_passthrough = False
    response.status_code = refusal.status
    response.set_data(refusal.body)
    for name, value in refusal.headers:
        response.headers[name] = value
    close = getattr(body, "close", None)  # the view's body (a file, a generator) is dropped
    if close is not None:
        close()


class ResponseHeaders:
    """Edits a Flask response's headers as the session-header rules ask."""

    __slots__ = ()

    def add_cookie(self, response: flask.Response, value: str) -> None:
        response.headers.add("Set-Cookie", value)

    def vary_on_cookie(self, response: flask.Response) -> None:
        response.vary.add("Cookie")

    def cache_control(self, response: flask.Response) -> list[str]:
        return response.headers.getlist("Cache-Control")

    def add_cache_control(self, response: flask.Response, value: str) -> None:
        response.headers["Cache-Control"] = value

    replace_cache_control = add_cache_control

    def drop_targeted(self, response: flask.Response) -> None:
        for name in TARGETED:
            if name in response.headers:
                del response.headers[name]


RESPONSE_HEADERS = ResponseHeaders()
