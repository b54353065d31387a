"""A store checks its driver when it is built, and names what to install.

An app that names a driver it does not have fails where it is configured, at import or
start-up, with one line naming the lazysession extra that brings the driver; never with
a raw ``ModuleNotFoundError`` at the first request.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lazysession import ConfigurationError, SQLAlchemyStore
from tests.helpers import client
from tests.reliability.faults import asgi_app

MISSING = [
    ("postgresql+asyncpg://app@db/app", "asyncpg", "lazysession[postgresql]"),
    ("postgresql+psycopg://app@db/app", "psycopg", "lazysession[postgresql]"),
    ("mysql+asyncmy://app@db/app", "asyncmy", "lazysession[mysql]"),
    ("mysql+aiomysql://app@db/app", "aiomysql", "lazysession[mysql]"),
    ("mysql+pymysql://app@db/app", "pymysql", "lazysession[mysql]"),
    ("sqlite+aiosqlite:///sessions.db", "aiosqlite", "lazysession[sqlalchemy]"),
]


@pytest.mark.parametrize(("url", "module", "extra"), MISSING)
def test_a_missing_driver_is_named_with_the_extra_that_installs_it(
    url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=re.escape(extra)) as refused:
        SQLAlchemyStore(url)
    assert module in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "suggested"),
    [
        ("postgresql+psycopg2://app@db/app", "postgresql+asyncpg"),
        ("mysql://app@db/app", "mysql+asyncmy"),
    ],
)
def test_a_driver_lazysession_does_not_install_is_named_with_the_ones_it_does(
    url: str, suggested: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    with pytest.raises(ConfigurationError, match=re.escape(suggested)):
        SQLAlchemyStore(url)


def recording(calls: list[str], name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, noting each call made from inside a running event loop."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            calls.append(name)
        return original(*args, **kwargs)

    return wrapper


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_first_request_does_no_blocking_set_up_in_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLAlchemyStore("sqlite+aiosqlite:///sessions.db")  # relative: resolved once
    calls: list[str] = []
    monkeypatch.setattr(os, "getcwd", recording(calls, "os.getcwd", os.getcwd))
    monkeypatch.setattr(os.path, "abspath", recording(calls, "os.path.abspath", os.path.abspath))
    try:
        async with client(asgi_app(store)) as http:
            assert (await http.get("/write", params={"user": "ada"})).status_code == 200
            assert (await http.get("/read")).json() == {"user": "ada"}
    finally:
        await store.aclose()
        store.sync.close()
    assert calls == []
