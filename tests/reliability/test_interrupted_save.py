"""A save cut short by a killed process leaves the old session or the new one, whole."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lazysession import Store
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.conftest import require_server
from tests.stores.backends import POSTGRES, REDIS, server_reachable, with_driver

WRITER = """
import sys
from datetime import datetime, timedelta, timezone
from lazysession.stores import RedisStore, SQLAlchemyStore
kind, url, name = sys.argv[1:4]
store = (RedisStore(url, prefix=name) if kind == "redis"
         else SQLAlchemyStore(url, table_name=name)).sync
versions = [{f"k{i}": f"{tag}-{i}" * 20 for i in range(2000)} for tag in ("old", "new")]
later = datetime.now(timezone.utc) + timedelta(hours=1)
store.save("a" * 64, versions[0], expires_at=later)
print("ready", flush=True)
while True:
    for version in versions:
        store.save("a" * 64, version, expires_at=later)
"""


def versions() -> list[dict[str, str]]:
    return [{f"k{i}": f"{tag}-{i}" * 20 for i in range(2000)} for tag in ("old", "new")]


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    kind = str(request.param)
    if kind == "sqlite":
        return kind, f"sqlite:///{tmp_path / 's.db'}", f"t_{uuid.uuid4().hex[:10]}"
    if kind == "postgresql":
        if not server_reachable(POSTGRES):
            require_server(f"no postgresql server at {POSTGRES}")
        return kind, with_driver(POSTGRES, "postgresql+psycopg"), f"t_{uuid.uuid4().hex[:10]}"
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    return kind, REDIS, f"lazysession-test:{uuid.uuid4().hex[:10]}:"


def open_store(kind: str, url: str, name: str) -> Store:
    return (
        RedisStore(url, prefix=name) if kind == "redis" else SQLAlchemyStore(url, table_name=name)
    )


def test_a_killed_writer_leaves_a_whole_session(target: tuple[str, str, str]) -> None:
    kind, url, name = target
    store = open_store(kind, url, name)
    try:
        for _ in range(3):
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, kind, url, name],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
            time.sleep(random.uniform(0.05, 0.5))
            writer.send_signal(signal.SIGKILL)
            writer.wait(10)
            loaded = store.sync.load("a" * 64)
            assert loaded in versions(), json.dumps(loaded)[:200]
    finally:
        if isinstance(store, SQLAlchemyStore):
            with store.check_sync().begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        else:
            store.sync.delete("a" * 64)
        store.sync.close()
