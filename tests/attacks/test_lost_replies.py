"""A store write that ran, whose answer the network lost (the connection reset just
after the server did it), on every networked store and every shell.

The README's rules for it: a login that fails between its two steps "still succeeds and
the old id lives on with what it held before"; a 409 means "none of its changes are
saved"; a 503 means the write did not happen "unless the database stopped answering in
the middle of it". None of these lets a lost answer destroy the session it was about.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lazysession import Store
from lazysession.stores._redis_lua import RETIRE, SHA, UPDATE
from tests.attacks.apps import session_with, started
from tests.attacks.lossy_proxy import ReplyLosingProxy
from tests.conftest import require_server
from tests.reliability.faults import SERVERS, Opened, server_of
from tests.reliability.race_apps import Shell, make_shell
from tests.stores.backends import server_reachable

pytestmark = pytest.mark.anyio

DRIVERS = {
    ("redis", "async"): "redis",
    ("redis", "sync"): "redis",
    ("postgresql", "async"): "postgresql+asyncpg",
    ("postgresql", "sync"): "postgresql+psycopg",
    ("mysql", "async"): "mysql+asyncmy",
    ("mysql", "sync"): "mysql+pymysql",
}


class Lossy:
    """A shell whose store is reached through a proxy that can lose one reply."""

    def __init__(self, shell: Shell, proxy: ReplyLosingProxy, kind: str) -> None:
        self.shell, self.proxy, self.kind = shell, proxy, kind

    def lose_reply_to_retirement(self) -> None:
        """Lose the answer to the step of a login that retires the old id (its last)."""
        self.proxy.lose_reply_to(SHA[RETIRE].encode() if self.kind == "redis" else b"=>")


@pytest.fixture
async def lossy(request: pytest.FixtureRequest) -> AsyncIterator[Lossy]:
    kind, shell_kind = request.param
    url, port = SERVERS[server_of(kind)]
    if not server_reachable(url):
        require_server(f"no {kind} server at {url}")
    opened = Opened()
    proxy = ReplyLosingProxy(port)
    proxy.up()
    opened.proxies.append(proxy)
    side = "async" if shell_kind == "asgi" else "sync"
    store: Store = opened.store(DRIVERS[(kind, side)], proxy.port, timeout=2.0)
    try:
        shell = make_shell(shell_kind, store)
        warm = await session_with(shell, warm="up")  # every script loaded on the server
        await started(shell, "/login", warm)
        yield Lossy(shell, proxy, kind)
    finally:
        await opened.close()


def cases(redis_mark: pytest.MarkDecorator | None) -> list[Any]:
    marks = [] if redis_mark is None else [redis_mark]
    return [
        pytest.param((kind, shell), id=f"{kind}-{shell}", marks=marks if kind == "redis" else [])
        for kind in ("redis", "postgresql", "mysql")
        for shell in ("asgi", "wsgi", "flask")
    ]


@pytest.mark.parametrize("lossy", cases(None), indirect=True)
async def test_a_login_whose_last_answer_is_lost_keeps_the_users_session(lossy: Lossy) -> None:
    """Either the login succeeded (its cookie reads the data), or the old id lives on with
    what it held: never both ids dead and the data gone."""
    shell = lossy.shell
    old = await session_with(shell, cart="3")
    lossy.lose_reply_to_retirement()
    login = await shell.get("/login", old)
    assert lossy.proxy.lost == 1, "the proxy lost no reply: the attack did not happen"
    if login.status == 200 and login.cookie is not None:
        now = await started(shell, "/read", login.cookie)
        assert now.data() == {"cart": "3", "user": "ada"}
    else:
        kept = await started(shell, "/read", old)
        assert kept.data() == {"cart": "3"}, (
            f"the login answered {login.status} and the user's session is gone: "
            f"the old id reads {kept.data()}"
        )


@pytest.mark.parametrize("lossy", cases(None), indirect=True)
async def test_a_409_after_a_lost_answer_means_nothing_was_saved(lossy: Lossy) -> None:
    """A pop of the last key (which ends the session) whose answer was lost: answered 409,
    the session must be as it was; otherwise it must not be answered 409."""
    shell = lossy.shell
    cookie = await session_with(shell, flash="saved")
    lossy.proxy.lose_reply_to(SHA[UPDATE].encode() if lossy.kind == "redis" else b"=>")
    popped = await shell.get("/pop", cookie, key="flash")
    if lossy.proxy.lost == 0:
        pytest.skip("this store ends the session without the marked statement")
    if popped.status == 409:
        assert (await started(shell, "/read", cookie)).data() == {"flash": "saved"}, (
            "answered 409 (nothing saved) but the pop was applied and the id retired"
        )
        late = await shell.get("/write", cookie, cart="1")
        assert late.status == 200, "the browser was left holding a retired id"
