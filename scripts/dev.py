#!/usr/bin/env python3
"""One entry point for working on lazysession; needs only Python 3.10+.

    python3 scripts/dev.py demo     # the demo app on http://127.0.0.1:8000 (SQLite store)
    python3 scripts/dev.py docs     # build the docs site into site/ (strict); `docs serve`
    python3 scripts/dev.py test     # the whole test suite (extra arguments go to pytest)
    python3 scripts/dev.py check    # ruff and mypy --strict
    python3 scripts/dev.py bench    # the benchmarks
    python3 scripts/dev.py compat   # Starlette's and Flask's own session tests, per store

Each command makes ``.venv`` and installs what it needs the first time, and again
whenever ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env(extra: str) -> None:
    """Create the virtual environment and install the package with ``extra``."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script runs before any install
        sys.exit(f"lazysession needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as error:
            sys.exit(
                f"could not create a virtual environment ({error}); on Debian or Ubuntu "
                "run: apt-get install python3-venv"
            )
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{extra}-{digest}"
    if stamp.exists():
        return
    print(f"installing lazysession[{extra}] into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f".[{extra}]"], check=True, cwd=ROOT)
    stamp.touch()


def run(*command: str) -> int:
    return subprocess.run([str(PYTHON), *command], cwd=ROOT).returncode


def serve(command: list[str]) -> int:
    """Run a server until it ends, passing it SIGTERM and SIGINT (exactly once each: it
    runs in a process group of its own, so a terminal's Ctrl-C reaches it only through
    here); returns its exit status."""
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:  # pragma: no cover - a handler replaced ours
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "docs", "test", "check", "bench", "compat"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure_env("demo")
        host = os.environ.get("HOST", "127.0.0.1")
        port = os.environ.get("PORT", "8000")
        uvicorn = [str(PYTHON), "-m", "uvicorn", "demo:app", "--app-dir", "examples"]
        return serve([*uvicorn, "--host", host, "--port", port, *rest])
    if command == "docs":
        ensure_env("docs")
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
        if rest[:1] == ["serve"]:
            return serve([str(PYTHON), "-m", "mkdocs", "serve", *rest[1:]])
        return run("-m", "mkdocs", "build", "--strict", *rest)
    ensure_env("dev")
    if command == "test":
        return run("-m", "pytest", *rest)
    if command == "compat":
        return run("scripts/compat.py", *rest)
    if command == "check":
        for step in (
            ["-m", "ruff", "check", "."],
            ["-m", "ruff", "format", "--check", "."],
            ["-m", "mypy"],
        ):
            code = run(*step)
            if code:
                return code
        return 0
    return run("benchmarks/run_all.py", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
