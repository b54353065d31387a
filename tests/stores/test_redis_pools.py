"""A Redis Cluster store keeps at most ``max_connections`` per node: requests past that
wait for one (redis-py's blocking pool, on the blocking side); a new asyncio cluster
client's first commands, sent together, all get through."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import datetime, timedelta, timezone

import redis

from lazysession.stores import RedisStore
from lazysession.stores._base import Changes
from tests.reliability.faults import wsgi_client


def test_a_cluster_store_waits_for_each_nodes_connections(redis_cluster_url: str) -> None:
    prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
    store = RedisStore(redis_cluster_url, cluster=True, prefix=prefix, max_connections=2)
    before = [store_connections(redis_cluster_url, node) for node in range(3)]
    try:
        http = wsgi_client(store, "wsgi")
        assert http.get("/write?user=ada").status_code == 200
        cookie = http.get_cookie("session")
        assert cookie is not None
        statuses: list[int] = []

        def read() -> None:
            reader = wsgi_client(store, "wsgi")
            reader.set_cookie("session", cookie.value)
            for _ in range(20):
                statuses.append(reader.get("/read").status_code)

        readers = [threading.Thread(target=read) for _ in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(20)
        assert statuses == [200] * 160
        after = [store_connections(redis_cluster_url, node) for node in range(3)]
        assert max(now - then for now, then in zip(after, before, strict=True)) <= 2, (
            before,
            after,
        )
    finally:
        store.sync.close()


def store_connections(cluster_url: str, node: int) -> int:
    """Connections open on the ``node``-th node, other than the one asking."""
    port = int(cluster_url.rsplit(":", 1)[1].split("/")[0]) + node
    admin = redis.Redis(port=port)
    try:
        return len(admin.client_list()) - 1
    finally:
        admin.close()


def test_the_first_commands_of_new_async_cluster_stores_sent_together_all_succeed(
    redis_cluster_url: str,
) -> None:
    """redis-py closes, in background tasks, the connections that learned the topology;
    a script sent on one of them meanwhile failed (about one new client in eight here),
    and a script is never sent twice. Each store here is new on its event loop."""
    prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
    expires_at = datetime.now(timezone.utc) + timedelta(hours=1)

    async def first_commands(round_: int) -> None:
        stores = [RedisStore(redis_cluster_url, cluster=True, prefix=prefix) for _ in range(8)]
        changes = [Changes(set={f"k{i}": i}) for i in range(64)]
        try:
            await asyncio.gather(
                *(
                    stores[i % 8].update(f"{round_:064d}", change, expires_at=expires_at)
                    for i, change in enumerate(changes)
                )
            )
        finally:
            for store in stores:
                await store.aclose()

    for round_ in range(20):
        asyncio.run(first_commands(round_))
