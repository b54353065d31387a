"""A Redis Cluster store keeps at most ``max_connections`` per node: requests past that
wait for one (redis-py's blocking pool, on the blocking side)."""

from __future__ import annotations

import threading
import uuid

import redis

from lazysession.stores import RedisStore
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
