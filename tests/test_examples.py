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


FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_ON_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
async def two_devices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A laptop and a phone, each with its own cookies, both logged in as ada."""
    module = load_example("demo", monkeypatch, tmp_path)
    async with client(module.app) as laptop, client(module.app) as phone:
        laptop.headers["user-agent"] = FIREFOX_ON_LINUX
        phone.headers["user-agent"] = SAFARI_ON_IOS
        for device in (laptop, phone):
            await device.post("/login", data={"user": "ada"})
        yield laptop, phone
    await module.store.aclose()


def devices_listed(page: str) -> list[str]:
    """The devices the page lists, "(this)" after the one it is viewed on."""
    items = re.findall(r'<li class="device".*?</li>', page, re.DOTALL)
    return [
        re.sub(r".*device-name\">([^<]*)<.*", r"\1", item, flags=re.DOTALL)
        + (" (this)" if 'class="this"' in item else "")
        for item in items
    ]


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_the_demo_lists_the_devices_of_the_logged_in_name(
    two_devices: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _laptop, phone = two_devices
    page = (await phone.get("/")).text
    assert devices_listed(page) == ["Safari on iOS (this)", "Firefox on Linux"]
    assert page.count("Log out this device") == 1
    assert 'id="logout-others"' in page


async def test_logging_out_other_devices_ends_their_sessions(
    two_devices: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    laptop, phone = two_devices
    token = form_token((await phone.get("/")).text)
    response = await phone.post("/devices/logout-others", data={"csrf": token})
    assert response.headers["location"].startswith("/?did=logout-others&ended=1&cookie=1&")
    assert "calls=2&sessions=1" in response.headers["location"]  # read, revoke_all
    page = (await phone.get(response.headers["location"])).text
    assert devices_listed(page) == ["Safari on iOS (this)"]
    assert "Logged out 1 other device." in page
    assert "Not logged in." in (await laptop.get("/")).text


async def test_logging_out_one_device_by_its_handle(
    two_devices: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    laptop, phone = two_devices
    page = (await phone.get("/")).text
    other = re.search(r'name="handle" value="([a-z2-7]{16})"', page)
    assert other is not None
    data = {"csrf": form_token(page), "handle": other.group(1)}
    response = await phone.post("/devices/logout", data=data, follow_redirects=True)
    assert devices_listed(response.text) == ["Safari on iOS (this)"]
    assert "Not logged in." in (await laptop.get("/")).text
    assert "Logged in as ada." in (await phone.get("/")).text


async def test_a_device_post_without_this_sessions_form_token_is_refused(
    two_devices: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    laptop, phone = two_devices
    laptop_token = form_token((await laptop.get("/")).text)
    for data in ({}, {"csrf": "forged"}, {"csrf": laptop_token}):
        response = await phone.post("/devices/logout-others", data=data)
        assert response.status_code == 403
    assert "Logged in as ada." in (await laptop.get("/")).text
    assert len(devices_listed((await phone.get("/")).text)) == 2


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
