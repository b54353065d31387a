from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from lazysession import Store
from tests.conftest import require_server
from tests.helpers import Clock
from tests.stores.backends import CASES, StoreCase
from tests.stores.redis_cluster import redis_cluster


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as url:
            yield url
    except FileNotFoundError as error:
        require_server(str(error))


# -- the store suites' cases: every back end, each store's sync side too --------------------


@pytest.fixture(params=list(CASES))
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreCase]:
    """One back end (``CASES``), cleaned up after the test."""
    made = CASES[request.param](tmp_path, request)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_store(case: StoreCase, clock: Clock) -> Callable[..., Store]:
    """``open_store(batch_size=1000)``: a store on the case's back end, on the test's
    clock; each call opens another (as another process would)."""

    def opener(batch_size: int = 1000) -> Store:
        return case.open(clock, batch_size)

    return opener


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()
