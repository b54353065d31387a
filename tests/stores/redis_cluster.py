"""A throwaway three-master Redis Cluster on loopback ports, from the installed redis-server."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

BASE_PORT = int(os.environ.get("LAZYSESSION_TEST_CLUSTER_PORT", "7301"))
"""The first of the three nodes' ports; set it apart for test runs that share a machine."""


@contextmanager
def redis_cluster(workdir: Path, base_port: int = BASE_PORT) -> Iterator[str]:
    """Start the cluster, yield a ``redis://`` URL of one node, and tear it all down."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise FileNotFoundError("redis-server and redis-cli are needed for the cluster tests")
    ports = [base_port + i for i in range(3)]
    processes = []
    try:
        for port in ports:
            node = workdir / str(port)
            node.mkdir(parents=True, exist_ok=True)
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node / "nodes.conf"),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node),
                        "--logfile",
                        str(node / "log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(lambda port=port: redis.Redis(port=port).ping())
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        _wait(
            lambda: all(redis.Redis(port=p).cluster("info")["cluster_state"] == "ok" for p in ports)
        )
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _wait(ready: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the Redis Cluster did not come up")
        time.sleep(0.05)
