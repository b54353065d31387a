"""The rules every shell keeps, each test run on ASGI (asyncio and trio), WSGI and Flask,
and on every store the shell's side reaches: lazy creation, no write-back of reads,
hostile cookies, endings, 5xx, Vary, streaming, Bearer traffic and ``skip_persistence``,
lifetimes, login and logout."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from lazysession import MemoryStore, never
from tests.helpers import Clock
from tests.shells.apps import ShellClient
from tests.shells.conftest import held
from tests.shells.stores import Recorded

pytestmark = pytest.mark.anyio

Serve = Callable[..., ShellClient]


# -- the session in the cookie ---------------------------------------------------------------


async def test_the_default_keeps_the_session_in_the_cookie(served: Serve) -> None:
    http = served(None)
    response = await http.get("/write", {"user": "ada"})
    assert "session=" in response.headers["set-cookie"]
    assert (await http.get("/read")).json() == {"user": "ada"}


# -- lazy: nothing for requests that do not write ----------------------------------------------


async def test_an_untouched_route_gets_no_cookie_no_vary_and_no_store_call(
    served: Serve, store: Recorded
) -> None:
    response = await served(store).get("/untouched")
    assert "set-cookie" not in response.headers
    assert "vary" not in response.headers
    assert store.calls == {}


async def test_reading_without_a_cookie_varies_but_creates_nothing(
    served: Serve, store: Recorded, shell: str
) -> None:
    response = await served(store).get("/read")
    assert response.json() == {}
    assert response.headers["vary"] == "Cookie"
    assert "set-cookie" not in response.headers
    assert store.calls == {}
    assert await held(shell, store) == 0


async def test_the_first_write_creates_one_session_and_a_cookie(
    served: Serve, store: Recorded, shell: str
) -> None:
    http = served(store)
    response = await http.get("/write", {"user": "ada"})
    assert "set-cookie" in response.headers
    assert store.calls == {"save": 1}
    assert (await http.get("/read")).json() == {"user": "ada"}
    assert await held(shell, store) == 1


async def test_the_cookie_carries_only_a_signed_id_not_the_data(served: Serve) -> None:
    http = served(MemoryStore())
    await http.get("/write", {"secret": "hunter2"})
    value = http.cookies["session"]
    assert "hunter2" not in value
    assert "hunter2" not in base64.urlsafe_b64decode(value.split(".")[0] + "==").decode("latin-1")


async def test_a_request_that_only_reads_never_writes_back(served: Serve, store: Recorded) -> None:
    http = served(store)
    await http.get("/write", {"n": "1"})
    response = await http.get("/read")
    assert response.json() == {"n": "1"}
    assert "set-cookie" not in response.headers
    assert store.calls == {"save": 1, "load": 1}


# -- hostile and stale cookies -------------------------------------------------------------------


async def test_a_tampered_cookie_gives_an_empty_session_and_a_200(
    served: Serve, store: Recorded
) -> None:
    http = served(store)
    await http.get("/write", {"n": "1"})
    good = http.cookies.pop("session")
    middle = len(good) // 4  # inside the id: every bit there is signed
    tampered = good[:middle] + ("B" if good[middle] == "A" else "A") + good[middle + 1 :]
    response = await http.get("/read", cookie=f"session={tampered}")
    assert response.status_code == 200
    assert response.json() == {}
    assert store.calls["load"] == 0


@pytest.mark.parametrize("value", ["", "null", "garbage", "a.b.c", "\u00e9\u00e8", "x" * 8000])
async def test_a_garbage_cookie_gives_an_empty_session(served: Serve, value: str) -> None:
    store = Recorded(MemoryStore())
    response = await served(store).get("/read", cookie=f"session={value}")
    assert response.status_code == 200
    assert response.json() == {}
    assert store.calls == {}


async def test_an_expired_session_is_not_adopted_and_a_write_mints_a_new_id(
    served: Serve,
) -> None:
    clock = Clock()
    http = served(MemoryStore(clock=clock), clock=clock, max_age=60)
    await http.get("/write", {"user": "ada"})
    first = http.cookies["session"]
    clock.advance(61)
    assert (await http.get("/read")).json() == {}
    await http.get("/write", {"user": "bob"})
    assert http.cookies["session"] != first


# -- endings, failures and headers ---------------------------------------------------------------


async def test_clearing_the_session_deletes_it_and_expires_the_cookie(
    served: Serve, store: Recorded, shell: str
) -> None:
    http = served(store)
    await http.get("/write", {"user": "ada"})
    response = await http.get("/clear")
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "session" not in http.cookies
    assert store.calls["delete"] == 1
    assert await held(shell, store) == 0


async def test_a_server_error_response_persists_nothing(served: Serve, store: Recorded) -> None:
    response = await served(store).get("/fail")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert store.calls == {}


async def test_vary_cookie_joins_an_existing_vary_header(served: Serve) -> None:
    response = await served(MemoryStore()).get("/vary")
    assert response.headers["vary"] == "Accept-Encoding, Cookie"


async def test_a_streaming_response_saves_before_its_headers_go_out(
    served: Serve, store: Recorded
) -> None:
    http = served(store)
    response = await http.get("/stream")
    assert response.text == "one two"
    assert "set-cookie" in response.headers
    assert (await http.get("/read")).json() == {"streamed": "yes"}


# -- Bearer traffic and skip_persistence -----------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_a_bearer_request_never_creates_a_session(
    served: Serve, store: Recorded, shell: str, scheme: str
) -> None:
    response = await served(store).get(
        "/write", {"user": "ada"}, {"Authorization": f"{scheme} token"}
    )
    assert response.json() == {"user": "ada"}  # the handler still had a working session
    assert "set-cookie" not in response.headers
    assert store.calls == {}
    assert await held(shell, store) == 0


async def test_basic_auth_is_not_bearer_and_persists(
    served: Serve, store: Recorded, shell: str
) -> None:
    await served(store).get("/write", {"a": "1"}, {"Authorization": "Basic Zm9vOmJhcg=="})
    assert await held(shell, store) == 1


async def test_a_bearer_request_with_a_session_cookie_reads_it_but_changes_nothing(
    served: Serve, store: Recorded
) -> None:
    http = served(store)
    await http.get("/write", {"user": "ada"})
    bearer = {"Authorization": "Bearer token"}
    seen = await http.get("/write", {"user": "mallory"}, bearer)
    cleared = await http.get("/clear", headers=bearer)
    after = await http.get("/read")
    assert seen.json() == {"user": "mallory"}
    assert "set-cookie" not in seen.headers and "set-cookie" not in cleared.headers
    assert after.json() == {"user": "ada"}
    assert store.calls["save"] == 1 and store.calls["delete"] == 0


async def test_skip_persistence_takes_any_predicate(
    served: Serve, store: Recorded, shell: str
) -> None:
    http = served(store, skip_persistence=lambda r: r.method == "POST")
    await http.post("/write", {"a": "1"})
    assert await held(shell, store) == 0
    await http.get("/write", {"a": "1"})
    assert await held(shell, store) == 1


async def test_skip_persistence_never_persists_bearer_requests_too(
    served: Serve, store: Recorded, shell: str
) -> None:
    http = served(store, skip_persistence=never)
    await http.get("/write", {"a": "1"}, {"Authorization": "Bearer t"})
    assert await held(shell, store) == 1


async def test_the_predicate_is_not_consulted_when_nothing_is_written(served: Serve) -> None:
    def explode(request: object) -> bool:
        raise AssertionError("consulted")

    http = served(MemoryStore(), skip_persistence=explode)
    assert (await http.get("/read")).status_code == 200


# -- lifetimes, login and logout ---------------------------------------------------------------


async def test_reads_keep_an_idle_session_alive_at_the_cost_of_a_few_touches(
    served: Serve,
) -> None:
    clock = Clock()
    store = Recorded(MemoryStore(clock=clock))
    http = served(store, clock=clock, idle_timeout=600, max_age=86400)
    await http.get("/write", {"user": "ada"})
    for _ in range(100):
        clock.advance(30)  # a read every 30 s for 50 minutes
        assert (await http.get("/read")).json() == {"user": "ada"}
    assert store.calls["save"] == 1
    assert 1 <= store.calls["touch"] <= 10  # 3,000 s / (0.5 * 600 s) = 10 at the most


async def test_an_idle_session_expires(served: Serve) -> None:
    clock = Clock()
    http = served(MemoryStore(clock=clock), clock=clock, idle_timeout=600)
    await http.get("/write", {"user": "ada"})
    clock.advance(601)
    assert (await http.get("/read")).json() == {}


async def test_login_regenerates_the_id_and_drops_the_planted_one(
    served: Serve, store: Recorded, shell: str
) -> None:
    http = served(store)
    await http.get("/write", {"cart": "1"})
    planted = http.cookies["session"]
    await http.get("/login")
    assert http.cookies["session"] != planted
    assert (await http.get("/read")).json() == {"cart": "1", "user": "ada"}
    assert await held(shell, store) == 1
    http.cookies.clear()
    stale = await http.get("/read", cookie=f"session={planted}")
    assert stale.json() == {}


async def test_logout_invalidates_the_session_everywhere(
    served: Serve, store: Recorded, shell: str
) -> None:
    http = served(store)
    await http.get("/login")
    cookie = http.cookies["session"]
    await http.get("/logout")
    assert await held(shell, store) == 0
    http.cookies.clear()
    assert (await http.get("/read", cookie=f"session={cookie}")).json() == {}
