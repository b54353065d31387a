"""Run an example app under a real uvicorn, as users deploy it, for as long as a test needs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def uvicorn_serving(
    app: str, cwd: Path, env: dict[str, str], *options: str, workers: int = 1
) -> Iterator[int]:
    """Serve ``app`` (``module:attribute`` in ``examples/``) on a free loopback port."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(EXAMPLES)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--workers", str(workers), *options]
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd)
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
        yield port
    finally:
        process.terminate()
        process.wait(15)
