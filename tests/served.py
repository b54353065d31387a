"""Run an example app under a real uvicorn, as users deploy it, for as long as a test needs
(with the benchmarks' launcher, so both start servers one way)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from benchmarks._server import uvicorn_serving as _uvicorn_serving

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def uvicorn_serving(
    app: str, cwd: Path, env: dict[str, str], *options: str, workers: int = 1
) -> contextlib.AbstractContextManager[int]:
    """Serve ``app`` (``module:attribute`` in ``examples/``) on a free loopback port."""
    return _uvicorn_serving(app, EXAMPLES, env, *options, workers=workers, cwd=cwd)
