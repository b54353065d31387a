"""``flask.session`` "keeps Flask's semantics" (README): what Flask's documentation tells
its users to do must work on every store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.attacks.apps import Held, started
from tests.reliability.race_apps import Harness, open_store

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
