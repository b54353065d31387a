from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_server
from tests.stores.redis_cluster import redis_cluster


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as url:
            yield url
    except FileNotFoundError as error:
        require_server(str(error))
