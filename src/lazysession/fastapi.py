"""FastAPI: the session as a typed dependency.

from lazysession.fastapi import SessionDep

@app.post("/login")
async def login(session: SessionDep) -> dict[str, str]:
    session.regenerate()
    session["user"] = "ada"
    return {"ok": "yes"}
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ._asgi import get_session
from ._session import Session

__all__ = ["SessionDep", "session_dependency"]


def session_dependency(request: Request) -> Session:
    """The request's lazysession ``Session`` (typed, unlike ``request.session``)."""
    return get_session(request)


SessionDep = Annotated[Session, Depends(session_dependency)]
