"""Two floors the benchmarks measure lazysession against, on routes that never touch the
session: what wrapping ``send`` alone costs, and the least any lazy session middleware
does. Neither persists anything; both serve only those routes."""

from __future__ import annotations

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
