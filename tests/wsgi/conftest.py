from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lazysession import Store
from tests.stores.backends import isolated_store


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def sync_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on each back end the WSGI shell must serve, through its sync side."""
    store, cleanup = isolated_store(request.param, tmp_path, sync=True)
    yield store
    cleanup()
