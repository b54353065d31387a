"""What the attack tests add to the race apps (``tests.reliability.race_apps``): handler
actions the races there do not take, and the helpers to hold requests at their gates.

Every action runs the same code on every shell (ASGI, WSGI, Flask), as there."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx
from werkzeug.test import Client

from tests.reliability import race_apps
from tests.reliability.race_apps import COOKIE, ASGIShell, Reply, Shell, ThreadShell
from tests.reliability.test_races import Held, real_time_clock, session_with, started

if TYPE_CHECKING:
    from lazysession import Session

__all__ = [
    "Held",
    "real_time_clock",
    "register_actions",
    "send_with_headers",
    "session_with",
    "started",
]


def _pin(session: Session, args: dict[str, str]) -> None:
    session.pin()


def _remember(session: Session, args: dict[str, str]) -> None:
    """ "Remember me": the session's own, longer lifetime."""
    session.set_lifetime(int(args["seconds"]))


def _logout_then_write(session: Session, args: dict[str, str]) -> None:
    """A logout that leaves a message for the next page: the common flash pattern."""
    session.invalidate()
    for key, value in args.items():
        session[key] = value


def _cart_new(session: Session, args: dict[str, str]) -> None:
    session["cart"] = [args["item"]]


def _cart_append_flask_style(session: Session, args: dict[str, str]) -> None:
    """An in-place change, announced the way Flask's documentation says to."""
    session["cart"].append(args["item"])
    session.modified = True


def _nested(session: Session, args: dict[str, str]) -> None:
    session["nested"] = NESTED


NESTED = {
    "floats": [1e20, 1.7e16, -0.0, 5e-324, 1.7976931348623157e308, 0.1],
    "ints": [2**70, -(2**63), 2**64 - 1, 0],
    "deep": {"a": {"b": [{"c": -0.0}]}},
    "text": ["\x00", "\u2028\u2029", "\ufeffbom", "\U0001f600", "\uffff", "e\u0301", '"\\/'],
}
"""Values JSON holds exactly but some databases' JSON types would bend (numbers, NUL,
line separators, astral characters), nested where a merge must keep them as they are."""

EXTRA: dict[str, Callable[[Session, dict[str, str]], None]] = {
    "pin": _pin,
    "remember": _remember,
    "logout-write": _logout_then_write,
    "nested": _nested,
    "cart-new": _cart_new,
    "cart-append": _cart_append_flask_style,
}


def register_actions() -> None:
    """Add the attacks' actions to the race apps (before any app is built)."""
    for name, action in EXTRA.items():
        race_apps.ACTIONS.setdefault(name, action)


async def send_with_headers(
    shell: Shell,
    path: str,
    cookie: str | None,
    headers: Mapping[str, str],
    **params: str,
) -> Reply:
    """A request to ``shell``'s app with ``headers`` besides the cookie (the race apps'
    driver sends the cookie alone)."""
    sent = dict(headers)
    if cookie is not None:
        sent["cookie"] = f"{COOKIE}={cookie}"
    if isinstance(shell, ASGIShell):
        transport = httpx.ASGITransport(app=shell.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get(path, params=params, headers=sent)
        return _reply(
            response.status_code, response.content, response.headers.get_list("set-cookie")
        )
    assert isinstance(shell, ThreadShell)

    def serve() -> Reply:
        client = Client(shell.app, use_cookies=False)
        got = client.get(path, query_string=params, headers=sent, buffered=True)
        return _reply(got.status_code, got.data, got.headers.getlist("Set-Cookie"))

    return await anyio.to_thread.run_sync(serve)


def _reply(status: int, body: bytes, cookies: list[str]) -> Reply:
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    return Reply(status, parsed, list(cookies))
