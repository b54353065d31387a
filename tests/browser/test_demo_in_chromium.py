"""The demo app in a real browser: headless Chromium, driven by Playwright.

What a browser adds over an HTTP client: it decides which cookies to keep and send, it
honours ``HttpOnly``, ``Secure``, ``SameSite`` and ``Partitioned`` itself, and its
``fetch()`` is the one a single-page app uses for token calls. The page's own report
(cookie carried, ``Set-Cookie`` sent, store calls, sessions held) is read as a visitor
reads it. With ``DEMO_SCREENSHOTS=DIR`` the screenshots the README shows are written to
DIR (``docs/images``); otherwise to a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from playwright.sync_api import Browser, Cookie, Page, sync_playwright

from tests.conftest import require_server
from tests.served import uvicorn_serving

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class Demo:
    url: str

    def sessions_in_store(self) -> int:
        response = httpx.get(f"{self.url}/stats", verify=False)  # noqa: S501 - its own test cert
        return int(response.json()["sessions_in_store"])


def chromium_executable() -> str:
    configured = os.environ.get("LAZYSESSION_CHROMIUM")
    for candidate in (configured, *CHROMIUM_NAMES):
        if candidate and (found := shutil.which(candidate)):
            return found
    require_server(
        "no Chromium to drive: install Debian's chromium package (.ci/run does) "
        "or set LAZYSESSION_CHROMIUM"
    )
    raise AssertionError("unreachable")


@contextlib.contextmanager
def demo_served(tmp_path: Path, *, https: bool, **settings: str) -> Iterator[Demo]:
    environment = {
        "LAZYSESSION_STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}",
        "LAZYSESSION_SECRET_KEY": secrets.token_urlsafe(32),
        **{f"LAZYSESSION_{name.upper()}": value for name, value in settings.items()},
    }
    options: list[str] = []
    if https:
        certificate = trustme.CA().issue_cert("127.0.0.1")
        certificate.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
        certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
        options += ["--ssl-keyfile", str(tmp_path / "key.pem")]
        options += ["--ssl-certfile", str(tmp_path / "cert.pem")]
    with uvicorn_serving("demo:app", tmp_path, environment, *options) as port:
        yield Demo(f"{'https' if https else 'http'}://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_served(tmp_path_factory.mktemp("http"), https=False) as served:
        yield served


@pytest.fixture(scope="module")
def secure_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_served(
        tmp_path_factory.mktemp("https"),
        https=True,
        https_only="true",
        same_site="none",
        partitioned="true",
    ) as served:
        yield served


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("DEMO_SCREENSHOTS")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, demo: Demo, user: str = "ada") -> None:
    page.goto(demo.url)
    page.fill("input[name=user]", user)
    page.click("text=Log in")
    page.wait_for_selector("#logout")


def report(page: Page) -> dict[str, str]:
    """The page's account of the last request, as shown."""
    return {
        name: (page.text_content(f"#{name}") or "").strip()
        for name in ("action", "cookie-in", "set-cookie", "store-calls", "sessions")
    }


def session_cookies(page: Page) -> list[Cookie]:
    return [cookie for cookie in page.context.cookies() if cookie.get("name") == "session"]


def test_a_visitor_gets_no_cookie_and_no_session(page: Page, demo: Demo) -> None:
    before = demo.sessions_in_store()
    page.goto(demo.url)
    page.reload()
    assert page.text_content("#who") == "Not logged in."
    assert page.context.cookies() == []
    assert demo.sessions_in_store() == before


def test_the_counter_survives_reloads(page: Page, demo: Demo) -> None:
    log_in(page, demo)
    for _ in range(3):
        page.click("#count")
        page.wait_for_load_state()
    page.reload()
    page.reload()
    assert page.text_content("#who") == "Logged in as ada."
    assert page.text_content("#counter") == "3"


def test_logging_in_stores_one_session(page: Page, demo: Demo) -> None:
    before = demo.sessions_in_store()
    log_in(page, demo)
    assert len(session_cookies(page)) == 1
    assert demo.sessions_in_store() == before + 1


def test_a_bearer_fetch_from_the_page_creates_no_session(page: Page, demo: Demo) -> None:
    before = demo.sessions_in_store()
    page.goto(demo.url)
    for _ in range(3):
        page.click("#api")
        page.wait_for_function("document.getElementById('api-result').textContent !== ''")
        page.evaluate("document.getElementById('api-result').textContent = ''")
    assert page.context.cookies() == []
    assert demo.sessions_in_store() == before


def test_logging_out_clears_the_cookie_and_the_stored_session(page: Page, demo: Demo) -> None:
    before = demo.sessions_in_store()
    log_in(page, demo)
    page.click("#logout")
    page.wait_for_selector("input[name=user]")
    assert session_cookies(page) == []
    assert demo.sessions_in_store() == before
    page.reload()
    assert page.text_content("#who") == "Not logged in."


def test_the_cookie_is_http_only_and_same_site_lax_over_http(page: Page, demo: Demo) -> None:
    log_in(page, demo)
    [cookie] = session_cookies(page)
    assert cookie.get("httpOnly") is True
    assert cookie.get("sameSite") == "Lax"
    assert cookie.get("secure") is False
    assert cookie.get("path") == "/"
    assert "session=" not in page.evaluate("document.cookie")


def test_over_https_the_cookie_is_secure_and_partitioned(page: Page, secure_demo: Demo) -> None:
    log_in(page, secure_demo)
    [cookie] = session_cookies(page)
    assert cookie.get("secure") is True
    assert cookie.get("httpOnly") is True
    assert cookie.get("sameSite") == "None"
    assert cookie.get("partitionKey"), "Chromium stored the cookie unpartitioned"
    page.reload()
    assert page.text_content("#who") == "Logged in as ada."


def test_after_logging_in_the_page_shows_what_the_request_did(page: Page, demo: Demo) -> None:
    before = demo.sessions_in_store()
    log_in(page, demo)
    assert report(page) == {
        "action": "logging in",
        "cookie-in": "no",
        "set-cookie": "yes",
        "store-calls": "1",
        "sessions": str(before + 1),
    }


def test_counting_shows_a_read_and_a_write_and_no_new_session(page: Page, demo: Demo) -> None:
    log_in(page, demo)
    held = report(page)["sessions"]
    page.click("#count")
    page.wait_for_selector("text=What counting did")
    shown = report(page)
    assert (shown["cookie-in"], shown["store-calls"], shown["sessions"]) == ("yes", "2", held)


def test_the_bearer_button_changes_nothing(page: Page, demo: Demo) -> None:
    page.goto(demo.url)
    before = demo.sessions_in_store()
    page.click("#api")
    page.wait_for_selector("text=What the Bearer API call did")
    assert report(page) == {
        "action": "the Bearer API call",
        "cookie-in": "no",
        "set-cookie": "no",
        "store-calls": "0",
        "sessions": str(before),
    }
    assert page.context.cookies() == []


def test_the_page_fits_a_phone_screen(phone: Page, demo: Demo, screenshots: Path) -> None:
    log_in(phone, demo, "grace")  # a name of its own: its devices are this one and the next
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.screenshot(path=str(screenshots / "demo-phone.png"), full_page=True)
    assert (screenshots / "demo-phone.png").stat().st_size > 10_000


def test_screenshots_of_a_visit_and_a_bearer_call(
    browser: Browser, demo: Demo, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 820})
    page = context.new_page()
    log_in(page, demo, "grace")
    page.click("#count")
    page.wait_for_selector("text=What counting did")
    page.screenshot(path=str(screenshots / "demo-counting.png"), full_page=True)
    page.click("#api")
    page.wait_for_selector("text=What the Bearer API call did")
    page.screenshot(path=str(screenshots / "demo-bearer.png"), full_page=True)
    context.close()
    for name in ("demo-counting.png", "demo-bearer.png"):
        assert (screenshots / name).stat().st_size > 10_000


ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def devices_shown(page: Page) -> list[tuple[str, bool]]:
    """Your devices, as listed: each one's label and whether it is marked this device."""
    return [
        (
            (item.locator(".device-name").text_content() or "").strip(),
            item.locator(".this").count() == 1,
        )
        for item in page.locator("#device-list .device").all()
    ]


def test_logging_out_other_devices_logs_out_the_other_browser(browser: Browser, demo: Demo) -> None:
    user = f"grace-{secrets.token_hex(4)}"  # the demo is shared: a name no other test uses
    laptop = browser.new_context()
    phone = browser.new_context(user_agent=ANDROID_CHROME)
    try:
        device_a, device_b = laptop.new_page(), phone.new_page()
        for page in (device_a, device_b):
            page.set_default_timeout(10_000)
        log_in(device_a, demo, user)
        log_in(device_b, demo, user)
        assert devices_shown(device_b) == [("Chrome on Android", True), ("Chrome on Linux", False)]
        device_a.reload()
        assert sorted(devices_shown(device_a)) == [
            ("Chrome on Android", False),
            ("Chrome on Linux", True),
        ]
        before = demo.sessions_in_store()

        device_b.click("#logout-others")
        device_b.wait_for_selector("text=What logging out other devices did")
        assert devices_shown(device_b) == [("Chrome on Android", True)]
        assert device_b.text_content("#ended") == "Logged out 1 other device."
        assert device_b.query_selector("#logout-others") is None
        assert demo.sessions_in_store() == before - 1

        device_a.reload()
        assert device_a.text_content("#who") == "Not logged in."
        assert device_a.query_selector("#devices") is None
        device_b.reload()
        assert device_b.text_content("#who") == f"Logged in as {user}."
    finally:
        laptop.close()
        phone.close()


def test_logging_out_one_device_from_another(browser: Browser, demo: Demo) -> None:
    user = f"alan-{secrets.token_hex(4)}"
    laptop = browser.new_context()
    phone = browser.new_context(user_agent=ANDROID_CHROME)
    try:
        device_a, device_b = laptop.new_page(), phone.new_page()
        for page in (device_a, device_b):
            page.set_default_timeout(10_000)
        log_in(device_a, demo, user)
        log_in(device_b, demo, user)
        device_b.click(".device:not(:has(.this)) .log-out-device")
        device_b.wait_for_selector("text=What logging out a device did")
        assert devices_shown(device_b) == [("Chrome on Android", True)]
        device_a.reload()
        assert device_a.text_content("#who") == "Not logged in."
    finally:
        laptop.close()
        phone.close()
