"""Logins that name an owner, on every shell (ASGI, WSGI, Flask) and every store kind:
the session is listed as the owner's, keeps its owner across a plain ``regenerate()``,
and the middleware's ``max_sessions_per_owner``, ``record_device`` and ``on_event`` do
what they say. Requests that never name an owner list nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lazysession import ConfigurationError, MemoryStore, SessionEvent, SessionMiddleware, Store
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.helpers import SECRET
from tests.shells.serving import Serve
from tests.stores.backends import isolated_store

pytestmark = pytest.mark.anyio

SHELLS = ["asgi", "wsgi", "flask"]
KINDS = ["memory", "sqlite", "postgresql", "mysql", "redis"]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture(params=[(s, k) for s in SHELLS for k in KINDS], ids=lambda p: f"{p[0]}-{p[1]}")
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def shell(case: tuple[str, str]) -> str:
    return case[0]


@pytest.fixture
async def store(case: tuple[str, str], tmp_path: Path) -> AsyncIterator[Store]:
    shell, kind = case
    if kind == "memory":
        yield MemoryStore()
        return
    made, cleanup = isolated_store(kind, tmp_path, sync=shell != "asgi")
    yield made
    cleanup()
    await made.aclose()


async def test_a_login_that_names_an_owner_lists_the_session_as_theirs(
    served: Serve, store: Store
) -> None:
    http = served(store)
    me = (await http.get("/login", {"owner": "alice"})).json()
    assert me["owner"] == "alice"
    again = (await http.get("/me")).json()
    assert again["owner"] == "alice"
    assert again["handle"] is not None
    assert (await http.get("/devices")).json() == [again["handle"]]


async def test_a_login_from_a_stored_anonymous_session_moves_it_to_its_owner(
    served: Serve, store: Store
) -> None:
    http = served(store)
    await http.get("/write", {"cart": "1"})
    anonymous = (await http.get("/me")).json()
    assert anonymous["owner"] is None
    await http.get("/login", {"owner": "alice"})
    me = (await http.get("/me")).json()
    assert me["owner"] == "alice"
    assert me["handle"] != anonymous["handle"]
    assert (await http.get("/devices")).json() == [me["handle"]]


async def test_a_plain_regenerate_keeps_the_owner_and_the_login_time(
    served: Serve, store: Store
) -> None:
    http = served(store)
    await http.get("/login", {"owner": "alice"})
    before = (await http.get("/me")).json()
    await http.get("/rotate")
    after = (await http.get("/me")).json()
    assert after["owner"] == "alice"
    assert after["authenticated_at"] == before["authenticated_at"]
    assert after["handle"] != before["handle"]
    assert (await http.get("/devices")).json() == [after["handle"]]


async def test_the_login_time_and_its_age_are_known_after_a_login(
    served: Serve, store: Store
) -> None:
    http = served(store)
    assert (await http.get("/me")).json()["auth_age"] is None
    await http.get("/login", {"owner": "alice"})
    me = (await http.get("/me")).json()
    assert me["authenticated_at"] is not None
    assert 0 <= me["auth_age"] < 60


async def test_a_logout_drops_the_owner_and_the_listing(served: Serve, store: Store) -> None:
    http = served(store)
    await http.get("/login", {"owner": "alice"})
    other = served(store)
    await other.get("/login", {"owner": "alice"})
    await http.get("/logout")
    assert (await http.get("/me")).json()["owner"] is None
    assert len((await other.get("/devices")).json()) == 1


async def test_two_devices_are_both_listed(served: Serve, store: Store) -> None:
    laptop, phone = served(store), served(store)
    await laptop.get("/login", {"owner": "alice"})
    await phone.get("/login", {"owner": "alice"})
    handles = {
        (await laptop.get("/me")).json()["handle"],
        (await phone.get("/me")).json()["handle"],
    }
    assert set((await laptop.get("/devices")).json()) == handles


async def test_max_sessions_per_owner_revokes_the_least_recently_seen(
    served: Serve, store: Store
) -> None:
    devices = [served(store, max_sessions_per_owner=2) for _ in range(3)]
    for device in devices:
        await device.get("/login", {"owner": "alice"})
    first = devices[0]
    assert (await first.get("/me")).json()["owner"] is None  # revoked: starts anonymous
    kept = [(await device.get("/me")).json()["handle"] for device in devices[1:]]
    assert set((await devices[1].get("/devices")).json()) == set(kept)


async def test_record_device_labels_the_session_from_the_login_user_agent(
    shell: str, served: Serve, store: Store
) -> None:
    http = served(store, record_device=True)
    await http.get("/login", {"owner": "alice"}, {"User-Agent": FIREFOX})
    infos = await listed_infos(shell, store, "alice")
    assert [info.device for info in infos] == ["Firefox on Linux"]


async def test_without_record_device_no_device_is_kept(
    shell: str, served: Serve, store: Store
) -> None:
    http = served(store)
    await http.get("/login", {"owner": "alice"}, {"User-Agent": FIREFOX})
    infos = await listed_infos(shell, store, "alice")
    assert [info.device for info in infos] == [None]


async def test_on_event_hears_creation_login_and_logout(served: Serve, store: Store) -> None:
    events: list[SessionEvent] = []
    http = served(store, on_event=events.append)
    await http.get("/write", {"cart": "1"})
    await http.get("/login", {"owner": "alice"})
    handle = (await http.get("/me")).json()["handle"]
    await http.get("/logout")
    kinds = [(event.kind, event.owner) for event in events]
    assert kinds == [("created", None), ("regenerated", "alice"), ("invalidated", "alice")]
    assert events[1].handle == handle == events[2].handle


async def test_an_async_on_event_is_awaited_on_every_shell(served: Serve, store: Store) -> None:
    events: list[SessionEvent] = []

    async def heard(event: SessionEvent) -> None:
        events.append(event)

    http = served(store, on_event=heard)
    await http.get("/login", {"owner": "alice"})
    assert [event.kind for event in events] == ["created"]


async def test_a_failing_on_event_is_logged_and_the_request_succeeds(
    served: Serve, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: SessionEvent) -> None:
        raise RuntimeError("secret detail")

    http = served(store, on_event=broken)
    with caplog.at_level(logging.ERROR, logger="lazysession"):
        response = await http.get("/login", {"owner": "alice"})
    assert response.status_code == 200
    assert (await http.get("/me")).json()["owner"] == "alice"
    assert "RuntimeError" in caplog.text
    assert "secret detail" not in caplog.text


def test_the_cap_is_refused_on_the_cookie_store(shell: str) -> None:
    with pytest.raises(ConfigurationError, match="max_sessions_per_owner"):
        build_bare(shell, max_sessions_per_owner=3)


def build_bare(shell: str, **options: Any) -> object:
    """The shell's middleware itself (not inside a framework that builds it later)."""
    if shell == "flask":
        return LazySessionInterface(store=None, sweep_interval=None, **options)
    if shell == "asgi":
        return SessionMiddleware(asgi_nothing, secret_key=SECRET, sweep_interval=None, **options)
    return WSGISessionMiddleware(wsgi_nothing, secret_key=SECRET, sweep_interval=None, **options)


async def asgi_nothing(scope: Any, receive: Any, send: Any) -> None:
    return None


def wsgi_nothing(environ: Any, start_response: Any) -> list[bytes]:
    return []


async def listed_infos(shell: str, store: Store, owner: str) -> list[Any]:
    if shell == "asgi":
        return await store.sessions_of(owner)
    return store.sync.sessions_of(owner)
