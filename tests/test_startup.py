"""The docs' start-up claims, each tried under a real uvicorn: a bad setting stops the
server before it serves, with the reason in one line; a misspelt name is reported in
one line and the app serves.

Each case runs ``uvicorn fastapi_app:app`` (the README's FastAPI quick start) on a free
loopback port in a subprocess, bounded in time, with an environment holding no other
``LAZYSESSION_*`` names than the case's own; a bad keyword argument is tried in a
Starlette and a FastAPI app of its own, whose middleware the framework builds only at
the first lifespan event.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BOUND = 30.0
"""Seconds a case may take to stop or to serve; far more than either needs."""


@dataclass(frozen=True)
class Run:
    """What uvicorn did: its exit status (None: it was serving) and what it wrote."""

    exit_status: int | None
    stderr: str
    status_of_me: int | None = None

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "lazysession" in line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(tmp_path: Path, **settings: str) -> Run:
    """Start the FastAPI example with these ``LAZYSESSION_*`` settings; stop it as soon
    as it exits or answers ``GET /me``."""
    return launch(tmp_path, "fastapi_app:app", EXAMPLES, settings)


def launch(tmp_path: Path, app: str, app_dir: Path, settings: dict[str, str]) -> Run:
    """Start ``app`` from ``app_dir`` with ``settings``, as ``serve`` does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAZYSESSION_")}
    env.update({f"LAZYSESSION_{name.upper()}": value for name, value in settings.items()})
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(app_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        status: int | None = None
        try:
            deadline = time.monotonic() + BOUND
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/me", timeout=2).status_code
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
        finally:
            code = process.poll()
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                process.kill()
                process.wait()
    if code is None and status is None:
        raise AssertionError(f"uvicorn neither stopped nor served within {BOUND} s")
    return Run(code, log.read_text(), status)


def secret() -> str:
    return secrets.token_urlsafe(32)


def assert_refused(run: Run, *expected: str) -> None:
    assert run.exit_status not in (None, 0), f"uvicorn served ({run.status_of_me})"
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("lazysession._errors.ConfigurationError: "), run.stderr
    for text in expected:
        assert text in last, last


def test_without_a_secret_key_uvicorn_refuses_to_start(tmp_path: Path) -> None:
    assert_refused(serve(tmp_path), "set LAZYSESSION_SECRET_KEY to a random string")


def test_a_misspelt_secret_key_name_is_named_when_uvicorn_refuses(tmp_path: Path) -> None:
    run = serve(tmp_path, secretkey=secret())
    assert_refused(run, "LAZYSESSION_SECRETKEY is set: a typo?")


def test_a_short_secret_key_stops_uvicorn(tmp_path: Path) -> None:
    assert_refused(serve(tmp_path, secret_key="short"), "LAZYSESSION_SECRET_KEY is too short")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("same_site", "bogus", "LAZYSESSION_SAME_SITE='bogus': expected lax, strict or none"),
        ("max_age", "0", "LAZYSESSION_MAX_AGE='0': expected more than 0 seconds"),
        ("https_only", "maybe", "LAZYSESSION_HTTPS_ONLY='maybe': expected true or false"),
    ],
)
def test_a_malformed_value_stops_uvicorn_naming_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    assert_refused(serve(tmp_path, secret_key=secret(), **{name: value}), expected)


def test_a_sync_driver_stops_uvicorn_naming_the_async_one(tmp_path: Path) -> None:
    run = serve(tmp_path, secret_key=secret(), store_url=f"sqlite:///{tmp_path / 's.db'}")
    assert_refused(run, "LAZYSESSION_STORE_URL=", "needs an async one: sqlite+aiosqlite://")
    assert not (tmp_path / "s.db").exists()


def test_a_driver_that_is_not_installed_stops_uvicorn_naming_the_extra(tmp_path: Path) -> None:
    run = serve(tmp_path, secret_key=secret(), store_url="mysql://root@127.0.0.1/test")
    assert_refused(run, "pip install 'lazysession[mysql]'")


def test_an_unknown_name_is_reported_in_one_line_and_the_app_serves(tmp_path: Path) -> None:
    run = serve(tmp_path, secret_key=secret(), maxage="60")
    assert run.status_of_me == 200
    assert run.error_lines() == [
        "lazysession: LAZYSESSION_MAXAGE is not a lazysession setting "
        "(did you mean LAZYSESSION_MAX_AGE?); it is ignored"
    ]


STARLETTE_APP = """
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from lazysession import MemoryStore, SessionMiddleware


async def me(request):
    return PlainTextResponse("ok")


app = Starlette(
    routes=[Route("/me", me)],
    middleware=[Middleware(SessionMiddleware, secret_key="s" * 32, {options})],
)
"""

FASTAPI_APP = """
from fastapi import FastAPI

from lazysession import MemoryStore, SessionMiddleware

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key="s" * 32, {options})


@app.get("/me")
def me():
    return "ok"
"""


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("same_site='bogus'", "same_site='bogus': expected 'lax', 'strict' or 'none'"),
        ("max_age='3600'", "max_age='3600': expected a number of seconds"),
        ("store=MemoryStore", "pass an instance, e.g. MemoryStore()"),
    ],
)
def test_a_bad_middleware_argument_stops_uvicorn_at_the_lifespan_naming_it(
    tmp_path: Path, framework: str, options: str, expected: str
) -> None:
    source = STARLETTE_APP if framework == "starlette" else FASTAPI_APP
    (tmp_path / "bad_app.py").write_text(source.replace("{options}", options))
    run = launch(tmp_path, "bad_app:app", tmp_path, {})
    assert run.exit_status not in (None, 0), f"uvicorn served ({run.status_of_me})"
    assert "appears unsupported" not in run.stderr, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if "ConfigurationError" in line]
    assert line.startswith("ERROR:    lazysession._errors.ConfigurationError: "), run.stderr
    assert expected in line, line
    assert run.stderr.strip().splitlines()[-1].endswith("Application startup failed. Exiting.")
