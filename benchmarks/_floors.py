"""The floors the benchmarks measure lazysession against. On routes that never touch the
session: what wrapping ``send`` alone costs, and the least any lazy session middleware
does (neither persists anything; both serve only those routes). With a valid cookie: the
least a server-side session middleware does to read or write a session."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lazysession import Session

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

FLOORS = {"pass-through wrapper (floor)", "lazy minimum (floor)"}
"""The floors' names in the tables: they are measured on the untouched scenarios only."""


def measured_in(stack: str, scenario: str) -> bool:
    """Whether the benchmarks measure ``stack`` in ``scenario`` (a floor serves only the
    routes that never touch the session)."""
    return scenario.startswith("untouched") or stack not in FLOORS


class PassThrough:
    """The least any session middleware can cost: wrap ``send`` and do nothing else."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        def forward(message: MutableMapping[str, Any]) -> Awaitable[None]:
            return send(message)

        await self.app(scope, receive, forward)


class LazyMinimum(PassThrough):
    """The least a lazy session middleware can do on a route that never touches the
    session: look for a cookie, give the handler a session, and look at the response's
    start whether the handler used it."""

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        for name, _ in scope["headers"]:
            if name == b"cookie":
                break
        session = scope["session"] = Session()

        def forward(message: MutableMapping[str, Any]) -> Awaitable[None]:
            if session.accessed:
                raise NotImplementedError("only for routes that never touch the session")
            return send(message)

        await self.app(scope, receive, forward)


WRITE_FLOOR = "minimal write (floor)"
"""The name of :class:`MinimalWrite` in the tables: measured with a valid cookie only."""


class MinimalWrite(PassThrough):
    """The least a server-side session middleware does with a valid cookie: find the
    cookie, verify it from a cache of values that verified, load the session's JSON, and
    at the response's start dump it back (when written) and add two headers (``Vary`` and
    ``Cache-Control``). A request without the cookie that writes gets a new id (how the
    benchmarks log in); nothing expires, nothing else is checked."""

    def __init__(self, app: Any, secret_key: str) -> None:
        super().__init__(app)
        self.key = secret_key.encode()
        self.verified: dict[bytes, str] = {}
        self.stored: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        found = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                found = self.verified.get(value.partition(b"=")[2])
                break
        text = None if found is None else self.stored.get(found)
        session = scope["session"] = Session(json.loads(text) if text is not None else ())
        stored = self.stored

        def forward(message: MutableMapping[str, Any]) -> Awaitable[None]:
            if message["type"] == "http.response.start" and session.accessed:
                headers = message.setdefault("headers", [])
                if session.modified:
                    key = found
                    if key is None:
                        key = secrets.token_urlsafe(30)
                        signed = f"{key}.{hmac.new(self.key, key.encode(), 'sha1').hexdigest()}"
                        self.verified[signed.encode()] = key
                        headers.append((b"set-cookie", b"session=" + signed.encode()))
                    stored[key] = json.dumps(session)
                headers.append((b"vary", b"Cookie"))
                headers.append((b"cache-control", b"private"))
            return send(message)

        await self.app(scope, receive, forward)
