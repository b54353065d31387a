"""The lazysession demo: log in, count, log out, and call a Bearer API that keeps no session.

Run it with ``python3 scripts/dev.py demo`` and open http://127.0.0.1:8000. The sessions
live in SQLite (``demo-sessions.db``). Every ``LAZYSESSION_*`` setting applies:
``LAZYSESSION_STORE_URL`` picks another database, ``LAZYSESSION_HTTPS_ONLY=true`` marks the
cookie ``Secure``, and so on (docs/configuration.md).
"""

from __future__ import annotations

import html
import logging
import os
import secrets

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lazysession import SessionMiddleware, Settings, get_session

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

DEFAULTS = {
    "LAZYSESSION_STORE_URL": "sqlite+aiosqlite:///demo-sessions.db",
    "LAZYSESSION_SECRET_KEY": secrets.token_urlsafe(32),
}
settings = Settings.from_mapping({**DEFAULTS, **os.environ})
store = settings.store()
API_TOKEN = "demo-token"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lazysession demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}}
form{{display:inline}} code{{background:#eee;padding:0 .2rem}}</style></head>
<body>
<h1>lazysession demo</h1>
<p id="who">{who}</p>
<p>Counter: <strong id="counter">{counter}</strong></p>
{forms}
<p>Sessions in the store: <strong id="sessions">{sessions}</strong></p>
<p><button id="api" type="button">Call the API with <code>Authorization: Bearer</code></button>
<span id="api-result"></span></p>
<p>Loading this page as a visitor creates no session; only logging in or counting does.
A Bearer request never creates one, even though its handler writes to the session.</p>
<script>
document.getElementById("api").onclick = async () => {{
  const r = await fetch("/api/whoami", {{
    headers: {{"Authorization": "Bearer {token}"}}, credentials: "omit"}});
  const body = await r.json();
  document.getElementById("api-result").textContent = JSON.stringify(body);
  document.getElementById("sessions").textContent = body.sessions_in_store;
}};
</script>
</body></html>
"""

LOGGED_OUT = """<form method="post" action="/login">
<input name="user" placeholder="your name" required> <button>Log in</button></form>"""
LOGGED_IN = """<form method="post" action="/count"><button id="count">Count</button></form>
<form method="post" action="/logout"><button id="logout">Log out</button></form>"""


async def home(request: Request) -> Response:
    user = request.session.get("user")
    page = PAGE.format(
        who=f"Logged in as {html.escape(user)}." if user else "Not logged in.",
        counter=int(request.session.get("counter", 0)),
        forms=LOGGED_IN if user else LOGGED_OUT,
        sessions=await store.count(),
        token=API_TOKEN,
    )
    return HTMLResponse(page)


async def login(request: Request) -> Response:
    form = await request.form()
    user = str(form.get("user", "")).strip()[:64] or "anonymous"
    session = get_session(request)
    session.regenerate()  # a new id at login: an id planted before it is worth nothing
    session.update({"user": user, "counter": 0})
    return RedirectResponse("/", status_code=303)


async def count(request: Request) -> Response:
    if "user" in request.session:
        request.session["counter"] = int(request.session.get("counter", 0)) + 1
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    get_session(request).invalidate()  # deleted from the store, cookie expired
    return RedirectResponse("/", status_code=303)


async def whoami(request: Request) -> Response:
    """Token-authenticated API: it writes to the session, as auth code does, yet no
    session is created, because the request carries a Bearer token."""
    if request.headers.get("authorization", "") != f"Bearer {API_TOKEN}":
        return JSONResponse({"error": "send Authorization: Bearer " + API_TOKEN}, 401)
    request.session["api_calls"] = int(request.session.get("api_calls", 0)) + 1
    return JSONResponse({"client": "sdk", "sessions_in_store": await store.count()})


async def stats(request: Request) -> Response:
    return JSONResponse({"sessions_in_store": await store.count()})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login, methods=["POST"]),
        Route("/count", count, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/whoami", whoami),
        Route("/stats", stats),
    ],
    middleware=[Middleware(SessionMiddleware, **settings.options(store))],
)
