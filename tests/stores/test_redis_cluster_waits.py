"""A Redis Cluster store's blocking calls end within the store's ``timeout`` when each
reply comes slowly but within the socket timeout: every node is reached through a proxy
that adds latency (the nodes announce the proxies' ports), so a call that needs several
round trips in one step (learning the topology, a new connection's handshake, then the
command) waits, round trip after round trip, only for what the call has left."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from lazysession import StoreError
from lazysession.stores import RedisStore
from tests.reliability.proxy import Proxy, free_port

TIMEOUT = 0.5
LATENCY = 0.3 * TIMEOUT
"""Added per chunk each way: one round trip takes 0.6 of the timeout."""
READ_BOUND = 1.25 * TIMEOUT
"""The timeout, and what a busy machine may add."""


def node_ports(cluster_url: str) -> list[int]:
    first = int(cluster_url.rsplit(":", 1)[1].split("/")[0])
    return [first + node for node in range(3)]


def announced_ports(ports: list[int]) -> list[set[int]]:
    """The ports each node gives for the cluster's masters."""
    views = []
    for port in ports:
        admin = redis.Redis(port=port)
        try:
            ranges = admin.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
            views.append({int(slots[2][1]) for slots in ranges})
        finally:
            admin.close()
    return views


def announce(ports: list[int], announced: list[int]) -> None:
    """Make each node announce its port in ``announced`` (0: its own), and wait until
    every node tells them all."""
    for port, other in zip(ports, announced, strict=True):
        admin = redis.Redis(port=port)
        try:
            admin.config_set("cluster-announce-port", other)
        finally:
            admin.close()
    want = {other or port for port, other in zip(ports, announced, strict=True)}
    deadline = time.monotonic() + 15
    while announced_ports(ports) != [want] * len(ports):
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster's nodes did not announce their new ports")
        time.sleep(0.05)


@contextmanager
def through_proxies(cluster_url: str) -> Iterator[tuple[str, list[Proxy]]]:
    """The cluster with every node reached through a proxy of its own: a URL of the
    first proxy, and the proxies. The nodes announce their own ports again after."""
    ports = node_ports(cluster_url)
    proxies = [Proxy(port) for port in ports]
    try:
        for proxy in proxies:
            proxy.up()
        announce(ports, [proxy.port for proxy in proxies])
        try:
            yield f"redis://127.0.0.1:{proxies[0].port}/0", proxies
        finally:
            announce(ports, [0] * len(ports))
    finally:
        for proxy in proxies:
            proxy.close()


def timed_read(store: RedisStore) -> tuple[object, float]:
    """A blocking read's answer (or its ``StoreError``), and how long it took."""
    started = time.monotonic()
    try:
        answer: object = store.sync.read("k" * 64)
    except StoreError as error:
        answer = error
    return answer, time.monotonic() - started


def assert_timed_out(answer: object, took: float) -> None:
    """The read ended in the store's timeout error, within the read's bound."""
    assert isinstance(answer, StoreError), f"{answer!r} after {took:.2f} s"
    assert "timeout" in str(answer), f"{answer!r} after {took:.2f} s"
    assert took < READ_BOUND, f"{answer!r} after {took:.2f} s"


@contextmanager
def cluster_store(cluster_url: str) -> Iterator[tuple[RedisStore, list[Proxy]]]:
    """A store on the cluster through ``through_proxies``; the proxies at full speed and
    the store closed after."""
    with through_proxies(cluster_url) as (url, proxies):
        prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
        store = RedisStore(url, cluster=True, prefix=prefix, timeout=TIMEOUT)
        try:
            yield store, proxies
        finally:
            for proxy in proxies:
                proxy.up()
            store.sync.close()


def test_a_first_blocking_cluster_read_over_a_slow_link_fails_within_the_timeout(
    redis_cluster_url: str,
) -> None:
    with cluster_store(redis_cluster_url) as (store, proxies):
        for proxy in proxies:
            proxy.slow(LATENCY)
        answer, took = timed_read(store)
    assert_timed_out(answer, took)


def test_a_blocking_cluster_read_after_dropped_connections_on_a_slow_link_fails_in_the_timeout(
    redis_cluster_url: str,
) -> None:
    with cluster_store(redis_cluster_url) as (store, proxies):
        assert store.sync.read("k" * 64) is None  # at full speed: the topology, a connection
        for proxy in proxies:
            proxy.down()  # the nodes drop the connections
            proxy.up()
            proxy.slow(LATENCY)
        answer, took = timed_read(store)
    assert_timed_out(answer, took)


# -- a cluster that cannot be reached ---------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("side", ["async", "sync"])
@pytest.mark.anyio
async def test_a_cluster_store_that_reaches_no_node_raises_a_store_error(side: str) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", cluster=True, timeout=TIMEOUT)
    try:
        if side == "async":
            with pytest.raises(StoreError, match="loading a session failed"):
                await store.read("k" * 64)
        else:
            with pytest.raises(StoreError, match="loading a session failed"):
                store.sync.read("k" * 64)
    finally:
        await store.aclose()
