"""Fixtures of the attack tests: one store of each kind and one app on each shell, as
the race tests build them (``tests.reliability.race_apps``), with the extra handler
actions the attacks need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.attacks.apps import register_actions
from tests.reliability.race_apps import SHELLS, STORES, Harness, open_store

register_actions()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg and asyncmy run on asyncio only


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SHELLS)
def shell_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def harness(store_kind: str, shell_kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """``store_kind``'s store, isolated, driven through ``shell_kind``'s app."""
    opened = open_store(store_kind, tmp_path, sync=shell_kind != "asgi")
    try:
        yield Harness(opened, shell_kind)
    finally:
        await opened.close()


@pytest.fixture
async def asgi_harness(store_kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """``store_kind``'s store driven through the ASGI app only (the store is what the
    attack is about, not the shell)."""
    opened = open_store(store_kind, tmp_path, sync=False)
    try:
        yield Harness(opened, "asgi")
    finally:
        await opened.close()


@pytest.fixture
async def memory_harness(shell_kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A memory store driven through ``shell_kind``'s app: for rules of the core, which
    are the same on every store."""
    opened = open_store("memory", tmp_path, sync=shell_kind != "asgi")
    try:
        yield Harness(opened, shell_kind)
    finally:
        await opened.close()
