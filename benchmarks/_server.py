"""Start an app from ``apps.py`` under uvicorn on a free loopback port, and stop it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


def reachable(url: str, default_port: int) -> bool:
    """Whether a server answers at the URL's host and port (loopback in practice)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served(stack: str, workers: int = 1, **env: str) -> Iterator[int]:
    port = free_port()
    environment = {**os.environ, "BENCH_STACK": stack, **env}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "apps:app",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=environment,
        cwd=HERE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn for {stack} did not start") from None
                time.sleep(0.05)
        time.sleep(0.3 * workers)  # let every worker finish its start-up
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
