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
def uvicorn_serving(
    app: str,
    app_dir: Path,
    env: dict[str, str],
    *options: str,
    workers: int = 1,
    cwd: Path | None = None,
) -> Iterator[int]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``) with uvicorn on a free loopback
    port until the block ends; yields the port once every worker is up."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(app_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--no-access-log", "--log-level", "warning", *options]
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd or app_dir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start {app}") from None
                time.sleep(0.05)
        time.sleep(0.3 * workers)  # let every worker finish its start-up
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def served(stack: str, workers: int = 1, **env: str) -> contextlib.AbstractContextManager[int]:
    """One of the stacks of ``apps.py``, served."""
    return uvicorn_serving("apps:app", HERE, {"BENCH_STACK": stack, **env}, workers=workers)
