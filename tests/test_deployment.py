"""The README's FastAPI example, moved to PostgreSQL with two uvicorn workers by changing
settings only, and ``lazysession stats`` reporting what it holds."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import require_server
from tests.served import uvicorn_serving
from tests.stores.backends import POSTGRES, server_reachable, with_driver

pytestmark = pytest.mark.server

BROWSERS = 12


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database of its own, so the default table name is the one the app uses."""
    if not server_reachable(POSTGRES):
        require_server(f"no postgresql server at {POSTGRES}")
    name = f"lazysession_deploy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        with_driver(POSTGRES, "postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield with_driver(POSTGRES, "postgresql+asyncpg").rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_two_workers_on_postgresql_by_settings_alone(fresh_database: str, tmp_path: Path) -> None:
    settings = {
        "LAZYSESSION_SECRET_KEY": secrets.token_urlsafe(32),
        "LAZYSESSION_STORE_URL": fresh_database,
    }
    with uvicorn_serving("fastapi_app:app", tmp_path, settings, workers=2) as port:
        browsers = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(BROWSERS)]
        for number, browser in enumerate(browsers):
            assert browser.post(f"/login/user{number}").status_code == 200
        anonymous = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        for _ in range(20):
            assert anonymous.get("/me").json() == {"user": None}
        for number, browser in enumerate(browsers):
            browser.headers["connection"] = "close"  # each call may land on either worker
            for _ in range(3):
                assert browser.get("/me").json() == {"user": f"user{number}"}
        browsers[0].post("/logout")
    stats = subprocess.run(
        [sys.executable, "-m", "lazysession.cli", "stats", fresh_database],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"sessions held: {BROWSERS - 1}" in stats
    assert "expired, awaiting the sweep: 0" in stats
