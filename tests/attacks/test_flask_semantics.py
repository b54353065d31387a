"""``flask.session`` "keeps Flask's semantics" (README): what Flask's documentation tells
its users to do must work on every store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.attacks.apps import Held, started
from tests.reliability.race_apps import COOKIE, Harness, ThreadShell, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def flask_harness(store_kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    opened = open_store(store_kind, tmp_path, sync=True)
    try:
        yield Harness(opened, "flask")
    finally:
        await opened.close()


async def test_an_in_place_change_flagged_with_session_modified_is_saved(
    flask_harness: Harness,
) -> None:
    """Flask: "modifications on mutable structures are not picked up automatically, in
    that situation you have to explicitly set the attribute to True yourself"."""
    shell = flask_harness.shell()
    cookie = (await started(shell, "/cart-new", None, item="1")).cookie
    assert cookie is not None
    await started(shell, "/cart-append", cookie, item="2")
    assert (await started(shell, "/read", cookie)).data() == {"cart": ["1", "2"]}


async def test_an_in_place_change_flagged_with_session_modified_survives_another_tabs_write(
    flask_harness: Harness,
) -> None:
    shell = flask_harness.shell()
    cookie = (await started(shell, "/cart-new", None, item="1")).cookie
    assert cookie is not None
    async with anyio.create_task_group() as tasks:
        adding = await Held(tasks, shell, "adding").send("/cart-append", cookie, item="2")
        await started(shell, "/write", cookie, theme="dark")
        assert (await adding.finish()).status == 200
    assert (await started(shell, "/read", cookie)).data() == {"cart": ["1", "2"], "theme": "dark"}


async def test_a_changed_cookie_setting_reaches_the_browser_with_its_next_write(
    flask_harness: Harness,
) -> None:
    """Flask reads ``SESSION_COOKIE_*`` on every request and sets the cookie on every
    write, so a changed setting reaches each browser with its next write. On a server
    store the cookie is re-sent only when it must change: a changed attribute is such a
    change, an unchanged one is not."""
    shell = flask_harness.shell()
    assert isinstance(shell, ThreadShell)
    cookie = (await started(shell, "/write", None, cart="3")).cookie
    assert cookie is not None
    same = await started(shell, "/write", cookie, theme="dark")
    assert not same.sets_cookie, "a write under unchanged settings re-sent the cookie"
    shell.app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    changed = await started(shell, "/write", cookie, theme="light")
    sent = [c for c in changed.set_cookies if c.startswith(COOKIE + "=")]
    assert sent and "samesite=strict" in sent[0].lower(), f"the new SameSite never sent: {sent}"
    assert changed.cookie == cookie  # the same session, its cookie re-sent
    again = await started(shell, "/write", cookie, theme="blue")
    assert not again.sets_cookie, "once the browser has the new attributes, no more cookies"
