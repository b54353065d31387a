"""The README's FastAPI quick start, kept runnable. Configured by settings alone:

LAZYSESSION_SECRET_KEY=... LAZYSESSION_STORE_URL=sqlite+aiosqlite:///sessions.db \
    uvicorn fastapi_app:app --app-dir examples
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from lazysession import SessionMiddleware, Settings
from lazysession.fastapi import SessionDep

settings = Settings.from_mapping(os.environ)  # LAZYSESSION_SECRET_KEY, LAZYSESSION_STORE_URL...

app = FastAPI()
app.add_middleware(SessionMiddleware, **settings.options())


@app.post("/login/{user}")
async def login(user: str, session: SessionDep) -> dict[str, str]:
    session.regenerate()  # a new id at login
    session["user"] = user  # the first write creates the session
    return {"user": user}


@app.get("/me")
async def me(session: SessionDep) -> dict[str, str | None]:
    return {"user": session.get("user")}  # reading creates nothing


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, bool]:
    session.invalidate()  # deletes the stored session and expires the cookie
    return {"logged_out": True}
