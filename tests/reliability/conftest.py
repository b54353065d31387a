"""Fixtures the fault tests share: the stores a test opens through the proxy, closed
after it (async, and blocking for the WSGI and Flask shells)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.reliability.faults import Opened, opened_sync


@pytest.fixture
async def opened() -> AsyncIterator[Opened]:
    opened = Opened()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def opened_blocking() -> Iterator[Opened]:
    with opened_sync() as opened:
        yield opened
