"""The demo app and the README's FastAPI example behave as the README says."""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.helpers import client

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def load_example(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    secret: str | None = "example-secret-" + "x" * 20,
) -> ModuleType:
    monkeypatch.setenv("LAZYSESSION_STORE_URL", f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    if secret is None:
        monkeypatch.delenv("LAZYSESSION_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("LAZYSESSION_SECRET_KEY", secret)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    module = load_example("demo", monkeypatch, tmp_path)
    async with client(module.app) as http:
        yield http
    await module.store.aclose()


def sessions_shown(page: str) -> int:
    found = re.search(r'id="sessions">(\d+)<', page)
    assert found is not None
    return int(found.group(1))


async def test_a_visitor_creates_no_session(demo: httpx.AsyncClient) -> None:
    page = await demo.get("/")
    assert "set-cookie" not in page.headers
    assert sessions_shown(page.text) == 0


async def test_the_bearer_api_writes_to_its_session_but_creates_none(
    demo: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        response = await demo.get("/api/whoami", headers={"authorization": "Bearer demo-token"})
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
    assert response.json()["sessions_in_store"] == 0


async def test_login_count_and_logout(demo: httpx.AsyncClient) -> None:
    await demo.post("/login", data={"user": "ada"})
    await demo.post("/count")
    page = (await demo.post("/count", follow_redirects=True)).text
    assert "Logged in as ada." in page
    assert 'id="counter">2<' in page
    assert sessions_shown(page) == 1
    page = (await demo.post("/logout", follow_redirects=True)).text
    assert "Not logged in." in page
    assert sessions_shown(page) == 0


async def test_the_fastapi_quick_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = load_example("fastapi_app", monkeypatch, tmp_path)
    async with client(module.app) as http:
        assert (await http.get("/me")).json() == {"user": None}
        assert "set-cookie" not in (await http.get("/me")).headers
        await http.post("/login/ada")
        assert (await http.get("/me")).json() == {"user": "ada"}
        await http.post("/logout")
        assert (await http.get("/me")).json() == {"user": None}


async def test_the_demo_reports_what_logging_in_did(demo: httpx.AsyncClient) -> None:
    response = await demo.post("/login", data={"user": "ada"})
    assert response.headers["location"] == ("/?did=login&cookie=0&set_cookie=1&calls=1&sessions=1")
    page = (await demo.get(response.headers["location"])).text
    assert 'What <span id="action">logging in</span> did' in page
    assert 'id="store-calls">1<' in page


async def test_the_demo_reports_that_a_bearer_call_changed_nothing(
    demo: httpx.AsyncClient,
) -> None:
    response = await demo.get("/api/whoami", headers={"authorization": "Bearer demo-token"})
    report = json.loads(response.headers["x-demo-report"])
    assert report == {"cookie": 0, "set_cookie": 0, "calls": 0, "sessions": 0}


async def test_the_demo_page_is_made_for_small_screens(demo: httpx.AsyncClient) -> None:
    page = (await demo.get("/")).text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


async def test_the_demo_keeps_its_secret_across_restarts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    first = load_example("demo", monkeypatch, tmp_path, secret=None)
    async with client(first.app) as http:
        await http.post("/login", data={"user": "ada"})
        cookie = http.cookies["session"]
    await first.store.aclose()
    assert (tmp_path / "s.key").stat().st_mode & 0o077 == 0
    restarted = load_example("demo", monkeypatch, tmp_path, secret=None)
    async with client(restarted.app) as http:
        http.cookies["session"] = cookie
        assert "Logged in as ada." in (await http.get("/")).text
    await restarted.store.aclose()
