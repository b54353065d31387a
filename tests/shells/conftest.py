"""The shell suite's cases: every test runs on each shell (ASGI under asyncio and trio,
WSGI, Flask) and, when it takes a store, on each store the shell's side can reach."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lazysession import MemoryStore, Store
from tests.shells.serving import app_builder, served  # noqa: F401 (fixtures)
from tests.shells.stores import STORE_KINDS, Recorded
from tests.stores.backends import isolated_store

SHELL_CASES = ["asgi", "asgi/trio", "wsgi", "flask"]
"""A module may narrow these with a ``SHELL_CASES`` of its own."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    shells = getattr(metafunc.module, "SHELL_CASES", SHELL_CASES)
    if any(
        "shell_case" in str(mark.args[0])
        for mark in metafunc.definition.iter_markers("parametrize")
    ):
        return  # the test names its own cases
    if "store_kind" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "STORE_KINDS", STORE_KINDS)
        pairs = [(s, k) for s in shells for k in kinds if not s.endswith("trio") or k == "memory"]
        ids = [f"{shell}-{kind}" for shell, kind in pairs]
        metafunc.parametrize(("shell_case", "store_kind"), pairs, ids=ids)
    elif "shell_case" in metafunc.fixturenames:
        metafunc.parametrize("shell_case", shells)


@pytest.fixture
def shell(shell_case: str) -> str:
    """The shell under test: ``asgi``, ``wsgi`` or ``flask``."""
    return shell_case.split("/")[0]


@pytest.fixture
def anyio_backend(shell_case: str) -> str:
    return "trio" if shell_case.endswith("trio") else "asyncio"


@pytest.fixture
async def store(shell: str, store_kind: str, tmp_path: Path) -> AsyncIterator[Recorded]:
    """A store of ``store_kind`` with the drivers of ``shell``'s side, recording calls."""
    if store_kind == "memory":
        inner: Store = MemoryStore()
        cleanup: Callable[[], None] = lambda: None  # noqa: E731
    else:
        inner, cleanup = isolated_store(store_kind, tmp_path, sync=shell != "asgi")
    yield Recorded(inner)
    cleanup()
    await inner.aclose()


async def held(shell: str, store: Store) -> int:
    """How many sessions ``store`` holds, counted on ``shell``'s side."""
    if shell == "asgi":
        return await store.count()
    return store.sync.count()
