"""The ``served`` fixture: a client of a shell's app, closed after the test, for every
suite that serves one (the shell suite, and the identity suite with its own app).

A suite's conftest takes ``served`` (and the default ``app_builder``) from here; a suite
serving another app overrides ``app_builder``. The test (or its conftest) provides
``shell``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from lazysession import Store
from tests.shells.apps import ShellClient, build

Serve = Callable[..., ShellClient]
"""``served(store, **options)``: a client of the shell's app over ``store``."""
AppBuilder = Callable[..., Any]
"""``(shell, store, **options)``: the app to serve."""


@pytest.fixture
def app_builder() -> AppBuilder:
    """What builds the served app: the shell suite's."""
    return build


@pytest.fixture
async def served(shell: str, app_builder: AppBuilder) -> AsyncIterator[Serve]:
    """``served(store, **options)``: a client of ``shell``'s app over ``store``."""
    clients: list[ShellClient] = []

    def serve(store: Store | None, **options: Any) -> ShellClient:
        client = ShellClient(shell, app_builder(shell, store, **options))
        clients.append(client)
        return client

    yield serve
    for client in clients:
        await client.aclose()
