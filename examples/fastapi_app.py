"""The README's FastAPI quick start, kept runnable.

uvicorn fastapi_app:app --app-dir examples
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request

from lazysession import SessionMiddleware, SQLAlchemyStore
from lazysession.fastapi import SessionDep

app = FastAPI()
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ.get("LAZYSESSION_SECRET_KEY", "change-me-to-a-long-random-string"),
    store=SQLAlchemyStore(
        os.environ.get("LAZYSESSION_STORE_URL", "sqlite+aiosqlite:///sessions.db")
    ),
)


@app.post("/login/{user}")
async def login(user: str, request: Request) -> dict[str, str]:
    request.session["user"] = user  # the first write creates the session
    return {"user": user}


@app.get("/me")
async def me(request: Request) -> dict[str, str | None]:
    return {"user": request.session.get("user")}  # reading creates nothing


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, bool]:
    session.invalidate()  # deletes the stored session and expires the cookie
    return {"logged_out": True}
