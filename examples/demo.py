"""The lazysession demo: log in, count, log out, see and log out your other devices, and call
a Bearer API that keeps no session.

Run it with ``python3 scripts/dev.py demo`` and open http://127.0.0.1:8000. After every
action the page shows what that request did: whether it carried a session cookie,
whether its response sent ``Set-Cookie``, how many store calls it made, and how many
sessions the store holds afterwards.

The sessions live in SQLite (``demo-sessions.db``); the secret key is kept next to it
(``demo-sessions.key``, made on first start), so sessions survive a restart. Every
``LAZYSESSION_*`` setting applies: ``LAZYSESSION_STORE_URL`` picks another server-side
store, ``LAZYSESSION_SECRET_KEY`` replaces the key file, ``LAZYSESSION_HTTPS_ONLY=true``
marks the cookie ``Secure``, and so on (docs/configuration.md).

"Your devices" lists the sessions of the logged-in name: a login calls
``session.regenerate(owner=name)`` and the middleware runs with ``record_device=True``,
so each entry carries a label read from the login's ``User-Agent``. Its buttons post to
``/devices/logout`` (``store.revoke``) and ``/devices/logout-others``
(``store.revoke_all``, keeping this one); both carry the session's form token, so
another site cannot post them. On a store without an index of owners the section says so.
"""

from __future__ import annotations

import contextvars
import html
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from lazysession import CookieStore, SessionInfo, SessionMiddleware, Settings, Store, get_session

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

DEFAULT_STORE_URL = "sqlite+aiosqlite:///demo-sessions.db"
API_TOKEN = "demo-token"
REPORT_HEADER = "x-demo-report"


def key_file_for(store_url: str) -> Path:
    """Where the development secret lives: beside the SQLite file, or here."""
    parts = urlsplit(store_url)
    if parts.scheme.startswith("sqlite") and parts.path not in ("", "/", "/:memory:"):
        return Path(parts.path[1:]).with_suffix(".key")
    return Path("demo-secret.key")


def development_secret(store_url: str) -> str:
    """The secret kept in the key file, made (readable by this user only) on first use."""
    path = key_file_for(store_url)
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


# -- counting the store calls each request makes -----------------------------------------

_calls: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "demo_store_calls", default=None
)


def _count(name: str) -> None:
    calls = _calls.get()
    if calls is not None:
        calls.append(name)


COUNTED = ("read", "touch", "update", "rotate", "save", "delete", "revoke", "revoke_all")
"""The store calls a request makes: the middleware's, and the revokes of the device
buttons (``count`` and ``sessions_of``, which the page itself calls to show the sessions
held and the devices, are left out)."""


def counting(store: Store | CookieStore) -> Store:
    """``store``, its calls counted for the current request (the store itself, so its
    kind and capabilities stay what they are)."""
    if isinstance(store, CookieStore) or store.in_process:
        raise SystemExit("the demo needs a server-side store: a database or Redis URL")
    for name in COUNTED:
        method = getattr(store, name, None)
        if method is not None:
            setattr(store, name, _counted(name, method))
    return store


def _counted(name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        _count(name)
        return await method(*args, **kwargs)

    return call


class Report:
    """Wraps the app, outside the session middleware: for each HTTP request it notes
    whether the request carried the cookie, whether the response sets it, the store calls
    made, and the sessions held once the response has been decided; it sends them in the
    ``x-demo-report`` header and, on a redirect, in the query of ``Location``."""

    def __init__(self, app: Any, store: Store, cookie_name: str) -> None:
        self.app = app
        self.store = store
        self.cookie = cookie_name.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carried = any(
            name == b"cookie" and self.cookie + b"=" in value for name, value in scope["headers"]
        )
        calls: list[str] = []
        token = _calls.set(calls)

        async def send_with_report(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                sets = any(
                    name.lower() == b"set-cookie" and value.startswith(self.cookie + b"=")
                    for name, value in headers
                )
                report = {
                    "cookie": int(carried),
                    "set_cookie": int(sets),
                    "calls": len(calls),
                    "sessions": await self.store.count(),
                }
                headers.append((REPORT_HEADER.encode(), json.dumps(report).encode()))
                headers = [_with_report(h, report) for h in headers]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_report)
        finally:
            _calls.reset(token)


def _with_report(header: tuple[bytes, bytes], report: dict[str, int]) -> tuple[bytes, bytes]:
    name, value = header
    if name.lower() != b"location":
        return header
    parts = urlsplit(value.decode("latin-1"))
    query = "&".join(filter(None, [parts.query, urlencode(report)]))
    return name, urlunsplit(parts._replace(query=query)).encode("latin-1")


# -- the app -----------------------------------------------------------------------------

environment = {"LAZYSESSION_STORE_URL": DEFAULT_STORE_URL, **os.environ}
if not environment.get("LAZYSESSION_SECRET_KEY"):
    environment["LAZYSESSION_SECRET_KEY"] = development_secret(environment["LAZYSESSION_STORE_URL"])
settings = Settings.from_mapping(environment)
store = counting(settings.store())

STYLE = """
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#f6f7f9;--card:#fff;--muted:#5c6670;
--line:#d9dee3;--accent:#2f6fde;--yes:#1a7f37;--no:#8c959f}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--bg:#15181c;--card:#1e2228;
--muted:#9aa4ae;--line:#343a42;--accent:#6ea3ff;--yes:#4ac26b;--no:#7d8590}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg)}
main{max-width:44rem;margin:0 auto;padding:1.5rem 1rem 3rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
.lead{color:var(--muted);margin:0 0 1.25rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.75rem;
padding:1rem 1.25rem;margin:0 0 1rem}
h2{font-size:1rem;margin:0 0 .75rem}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
form{display:flex;flex-wrap:wrap;gap:.5rem;margin:0}
input{font:inherit;padding:.45rem .6rem;border:1px solid var(--line);border-radius:.5rem;
background:var(--bg);color:var(--fg);min-width:0;flex:1 1 10rem}
button{font:inherit;padding:.45rem .9rem;border:0;border-radius:.5rem;background:var(--accent);
color:#fff;cursor:pointer}
button.quiet{background:transparent;color:var(--accent);border:1px solid var(--accent)}
dl{display:grid;grid-template-columns:1fr auto;gap:.4rem 1rem;margin:0}
dt{color:var(--muted)}
dd{margin:0;font-weight:600;text-align:right;font-variant-numeric:tabular-nums}
.yes{color:var(--yes)}.no{color:var(--no)}
.counter{font-size:2rem;font-weight:700;font-variant-numeric:tabular-nums}
code{font-size:.9em;background:var(--bg);padding:0 .25rem;border-radius:.25rem}
.note{color:var(--muted);font-size:.9rem;margin:.75rem 0 0}
.devices{list-style:none;margin:0 0 .75rem;padding:0}
.devices li{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;
justify-content:space-between;padding:.5rem 0;border-top:1px solid var(--line)}
.devices li:first-child{border-top:0}
.when{color:var(--muted);font-size:.9rem}
.this{color:var(--yes);font-size:.9rem;font-weight:600}
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lazysession demo</title><style>{style}</style></head>
<body><main>
<h1>lazysession demo</h1>
<p class="lead">Sessions are created only when written, never for Bearer requests.</p>

<section aria-labelledby="you">
<h2 id="you">You</h2>
<p id="who">{who}</p>
{body}
</section>

<section aria-labelledby="last">
<h2 id="last">What <span id="action">{action}</span> did</h2>
<dl>
<dt>The request carried a session cookie</dt><dd id="cookie-in">{cookie}</dd>
<dt>The response sent <code>Set-Cookie</code></dt><dd id="set-cookie">{set_cookie}</dd>
<dt>Store calls the request made</dt><dd id="store-calls">{calls}</dd>
<dt>Sessions in the store</dt><dd id="sessions">{sessions}</dd>
</dl>
</section>
{devices}
<section aria-labelledby="api-title">
<h2 id="api-title">A token client</h2>
<div class="row"><button id="api" type="button" class="quiet">Call the API with
<code>Authorization: Bearer</code></button> <span id="api-result"></span></div>
<p class="note">Its handler writes to the session, yet no session is created and no cookie
is sent: the request carries a Bearer token.</p>
</section>
</main>
<script>
const yesNo = (v) => v ? '<span class="yes">yes</span>' : '<span class="no">no</span>';
document.getElementById("api").onclick = async () => {{
  const r = await fetch("/api/whoami", {{
    headers: {{"Authorization": "Bearer {token}"}}, credentials: "omit"}});
  const report = JSON.parse(r.headers.get("{header}"));
  document.getElementById("action").textContent = "the Bearer API call";
  document.getElementById("cookie-in").innerHTML = yesNo(report.cookie);
  document.getElementById("set-cookie").innerHTML = yesNo(report.set_cookie);
  document.getElementById("store-calls").textContent = report.calls;
  document.getElementById("sessions").textContent = report.sessions;
  document.getElementById("api-result").textContent =
    `answered ${{r.status}} for client ${{(await r.json()).client}}`;
}};
</script>
</body></html>
"""

LOGGED_OUT = """<form method="post" action="/login">
<input name="user" placeholder="your name" aria-label="your name" required>
<button>Log in</button></form>"""
LOGGED_IN = """<p>Counter: <span class="counter" id="counter">{counter}</span></p>
<div class="row"><form method="post" action="/count"><button id="count">Count</button></form>
<form method="post" action="/logout"><button id="logout" class="quiet">Log out</button></form>
</div>"""

DEVICES = """<section aria-labelledby="devices-title" id="devices">
<h2 id="devices-title">Your devices</h2>
{content}
<p class="note">Each login is a session of its own, named by a handle that grants nothing;
logging a device out ends its session in the store, so its cookie opens nothing.</p>
</section>
"""
DEVICE = """<li class="device" data-handle="{handle}">
<div><strong class="device-name">{label}</strong> {mark}<br>
<span class="when">logged in {created} &#183; last seen {seen}</span></div>
{button}</li>"""
THIS_DEVICE = '<span class="this">this device</span>'
LOG_OUT_DEVICE = """<form method="post" action="/devices/logout">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="handle" value="{handle}">
<button class="quiet log-out-device">Log out this device</button></form>"""
LOG_OUT_OTHERS = """<form method="post" action="/devices/logout-others">
<input type="hidden" name="csrf" value="{csrf}">
<button id="logout-others" class="quiet">Log out other devices</button></form>"""

ACTIONS = {
    "login": "logging in",
    "count": "counting",
    "logout": "logging out",
    "logout-device": "logging out a device",
    "logout-others": "logging out other devices",
}


def yes_no(value: bool) -> str:
    return '<span class="yes">yes</span>' if value else '<span class="no">no</span>'


def ago(at: datetime) -> str:
    """``at`` as a visitor reads it ("just now", "3 min ago"), its UTC time in a title."""
    seconds = max(0, int(time.time() - at.timestamp()))
    if seconds < 60:
        text = "just now"
    elif seconds < 3600:
        text = f"{seconds // 60} min ago"
    elif seconds < 86400:
        text = f"{seconds // 3600} h ago"
    else:
        text = f"on {at:%Y-%m-%d}"
    stamp = at.isoformat(timespec="seconds")
    return f'<time datetime="{stamp}" title="{stamp}">{text}</time>'


async def devices_section(request: Request) -> str:
    """The logged-in owner's sessions, this one marked, each other one with its button."""
    session = get_session(request)
    owner = session.owner
    if owner is None:
        return ""
    try:
        sessions: list[SessionInfo] = await store.sessions_of(owner)
    except NotImplementedError:
        content = (
            f'<p id="no-index">This store ({html.escape(type(store).__name__)}) keeps no '
            "index of owners, so it cannot list your devices.</p>"
        )
        return DEVICES.format(content=content)
    csrf = html.escape(str(session.get("csrf", "")))
    items = []
    for info in sessions:
        this = info.handle == session.handle
        items.append(
            DEVICE.format(
                handle=info.handle,
                label=html.escape(info.device or "An unnamed device"),
                mark=THIS_DEVICE if this else "",
                created=ago(info.created_at),
                seen=ago(info.last_seen),
                button="" if this else LOG_OUT_DEVICE.format(csrf=csrf, handle=info.handle),
            )
        )
    others = sum(info.handle != session.handle for info in sessions)
    content = '<ul class="devices" id="device-list">' + "\n".join(items) + "</ul>"
    ended = _number(request, "ended")
    if request.query_params.get("did") in ("logout-device", "logout-others") and ended is not None:
        content += f'<p id="ended">Logged out {ended} other device{"" if ended == 1 else "s"}.</p>'
    if others:
        content += LOG_OUT_OTHERS.format(csrf=csrf)
    return DEVICES.format(content=content)


def _number(request: Request, name: str) -> int | None:
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError):
        return None


async def home(request: Request) -> Response:
    user = request.session.get("user")
    counter = int(request.session.get("counter", 0))
    body = LOGGED_IN.format(counter=counter) if user else LOGGED_OUT
    did = request.query_params.get("did", "")
    if did in ACTIONS and _number(request, "calls") is not None:
        action = ACTIONS[did]
        cookie = yes_no(bool(_number(request, "cookie")))
        set_cookie = yes_no(bool(_number(request, "set_cookie")))
        calls = str(_number(request, "calls"))
    else:  # a plain visit: the page cannot see its own response headers
        action, cookie, set_cookie, calls = "your last action", "&#8211;", "&#8211;", "&#8211;"
    page = PAGE.format(
        style=STYLE,
        who=f"Logged in as {html.escape(user)}." if user else "Not logged in.",
        body=body,
        devices=await devices_section(request) if user else "",
        action=action,
        cookie=cookie,
        set_cookie=set_cookie,
        calls=calls,
        sessions=await store.count(),
        token=API_TOKEN,
        header=REPORT_HEADER,
    )
    return HTMLResponse(page)


def back(action: str, **shown: int) -> Response:
    query = urlencode({"did": action, **shown})
    return RedirectResponse(f"/?{query}", status_code=303)


async def login(request: Request) -> Response:
    form = await request.form()
    user = str(form.get("user", "")).strip()[:64] or "anonymous"
    session = get_session(request)
    # A new id at login (an id planted before it is worth nothing), recorded as the
    # user's: it is listed in store.sessions_of(user), with this browser's device label.
    session.regenerate(owner=user)
    session.update({"user": user, "counter": 0, "csrf": secrets.token_urlsafe(16)})
    return back("login")


async def count(request: Request) -> Response:
    if "user" in request.session:
        request.session["counter"] = int(request.session.get("counter", 0)) + 1
    return back("count")


async def logout(request: Request) -> Response:
    get_session(request).invalidate()  # deleted from the store, cookie expired
    return back("logout")


async def _device_form(request: Request) -> tuple[str, dict[str, str]] | Response:
    """The owner and the fields of a device button's post, or the refusal: no owner, or
    a form token that is not this session's (a post made by another site)."""
    session = get_session(request)
    owner = session.owner
    form = {name: str(value) for name, value in (await request.form()).items()}
    expected = str(session.get("csrf", ""))
    if owner is None or not expected or not secrets.compare_digest(form.get("csrf", ""), expected):
        return PlainTextResponse("this form is not from this session's page", status_code=403)
    return owner, form


async def logout_device(request: Request) -> Response:
    """``store.revoke``: end one of the owner's other sessions, named by its handle."""
    checked = await _device_form(request)
    if isinstance(checked, Response):
        return checked
    owner, form = checked
    session = get_session(request)
    handle = form.get("handle", "")
    if handle == session.handle:  # this device: an ordinary logout
        session.invalidate()
        return back("logout")
    try:
        ended = await store.revoke(owner, handle)
    except NotImplementedError:
        return PlainTextResponse("this store keeps no index of owners", status_code=501)
    return back("logout-device", ended=int(ended))


async def logout_others(request: Request) -> Response:
    """``store.revoke_all``: end every session of the owner but this one."""
    checked = await _device_form(request)
    if isinstance(checked, Response):
        return checked
    owner, _form = checked
    try:
        ended = await store.revoke_all(owner, keep=get_session(request).handle)
    except NotImplementedError:
        return PlainTextResponse("this store keeps no index of owners", status_code=501)
    return back("logout-others", ended=ended)


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
        Route("/devices/logout", logout_device, methods=["POST"]),
        Route("/devices/logout-others", logout_others, methods=["POST"]),
        Route("/api/whoami", whoami),
        Route("/stats", stats),
    ],
    middleware=[
        Middleware(Report, store=store, cookie_name=settings.cookie_name),
        Middleware(SessionMiddleware, **settings.options(store), record_device=True),
    ],
)
