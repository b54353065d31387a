from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lazysession import MemoryStore, Store
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.conftest import require_server
from tests.stores.backends import POSTGRES, REDIS, server_reachable, with_driver


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def sync_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on each back end the WSGI shell must serve, through its sync side."""
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "redis":
        if not server_reachable(REDIS):
            require_server(f"no redis server at {REDIS}")
        prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
        redis_store = RedisStore(REDIS, prefix=prefix)
        yield redis_store
        client = redis_store.check_sync()
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        redis_store.sync.close()
        return
    table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        if not server_reachable(POSTGRES):
            require_server(f"no postgresql server at {POSTGRES}")
        url = with_driver(POSTGRES, "postgresql+psycopg")
    sql_store = SQLAlchemyStore(url, table_name=table)
    yield sql_store
    with sql_store.check_sync().begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    sql_store.sync.close()
