"""Start-up errors of a middleware the framework builds lazily, while serving.

Rules:
- Starlette (and FastAPI) build their middleware at the first ASGI call, the lifespan
  startup under a server. An error raised there reaches the server as a failed lifespan
  call, which uvicorn logs only as "ASGI 'lifespan' protocol appears unsupported" before
  it serves every request a 500. A middleware refused then answers the lifespan itself:
  ``lifespan.startup.failed`` with the error in one line (uvicorn prints it and exits),
  then raises the error, as Starlette's own router does with a failed startup.
- Built anywhere else (by the app's own code, at import), the error is raised as usual.
"""

from __future__ import annotations

import sys

from ._errors import ConfigurationError
from ._types import Receive, Scope, Send

_FRAMES_SEARCHED = 40


def in_lifespan() -> bool:
    """Whether this code runs inside an ASGI lifespan call: some caller's frame holds the
    lifespan scope (Starlette's ``__call__`` does, while it builds its middleware)."""
    frame = sys._getframe(1)
    for _ in range(_FRAMES_SEARCHED):
        scope = frame.f_locals.get("scope")
        if isinstance(scope, dict) and scope.get("type") == "lifespan":
            return True
        if frame.f_back is None:
            return False
        frame = frame.f_back
    return False


class RefusedStartup:
    """What a middleware refused at start-up answers instead of serving."""

    __slots__ = ("error",)

    def __init__(self, error: ConfigurationError) -> None:
        self.error = error

    @property
    def line(self) -> str:
        kind = type(self.error)
        return f"{kind.__module__}.{kind.__qualname__}: {self.error}"

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": self.line})
        raise self.error.with_traceback(None)
