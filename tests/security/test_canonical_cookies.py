"""Only the exact bytes the server sent verify (issue 15, items 1 and 4).

A lenient base64 decoder reads the same signature out of many byte strings; each of them
must be nothing: an empty session, no store call, and never echoed back in ``Set-Cookie``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lazysession._signing import IdSigner, SecretKeys
from tests.helpers import SECRET, Clock, RecordingStore, client, make_app
from tests.security.cookies import MUTATIONS, SIGNED_ID, cookie, set_cookie_value, store_of

pytestmark = pytest.mark.anyio

STORES = ["memory", "sqlite", "cookie"]


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
@pytest.mark.parametrize("kind", STORES)
async def test_a_valid_cookie_with_bytes_added_or_altered_loads_nothing(
    kind: str, mutate: Callable[[str], str], tmp_path: Path
) -> None:
    async with store_of(kind, tmp_path) as store, client(make_app(store=store)) as http:
        await http.get("/write", params={"user": "ada"})
        good = http.cookies["session"]
        http.cookies.clear()
        assert (await http.get("/read", headers=cookie(good))).json() == {"user": "ada"}
        if isinstance(store, RecordingStore):
            store.calls.clear()
        response = await http.get("/read", headers=cookie(mutate(good)))
    assert response.status_code == 200
    assert response.json() == {}
    if isinstance(store, RecordingStore):
        assert store.calls == {}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
async def test_set_cookie_never_echoes_the_bytes_a_client_sent(
    mutate: Callable[[str], str],
) -> None:
    clock = Clock()
    app = make_app(store=RecordingStore(clock=clock), clock=clock, idle_timeout=600)
    async with client(app) as http:
        await http.get("/write", params={"user": "ada"})
        bent = mutate(http.cookies["session"])
        http.cookies.clear()
        clock.advance(400)  # were the bent value taken, its cookie would be sent again
        response = await http.get("/write", params={"n": "1"}, headers=cookie(bent))
    sent = set_cookie_value(response.headers["set-cookie"])
    assert sent != bent
    assert SIGNED_ID.fullmatch(sent)


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
async def test_a_value_signed_with_a_retired_key_is_canonical_too(
    mutate: Callable[[str], str],
) -> None:
    store = RecordingStore()
    old = make_app(store=store, secret_key="old-" + "k" * 28)
    rotated = make_app(store=store, secret_key=["new-" + "k" * 28, "old-" + "k" * 28])
    async with client(old) as http:
        await http.get("/write", params={"user": "ada"})
        good = http.cookies["session"]
    async with client(rotated) as http:
        assert (await http.get("/read", headers=cookie(good))).json() == {"user": "ada"}
        store.calls.clear()
        response = await http.get("/read", headers=cookie(mutate(good)))
    assert response.json() == {}
    assert store.calls == {}


async def test_a_cookie_sent_again_is_exactly_the_value_the_server_signed() -> None:
    clock = Clock()
    app = make_app(store=RecordingStore(clock=clock), clock=clock, idle_timeout=600)
    async with client(app) as http:
        await http.get("/write", params={"user": "ada"})
        good = http.cookies["session"]
        clock.advance(400)  # past touch_after: the cookie's expiry must move
        response = await http.get("/write", params={"n": "2"})
    sent = set_cookie_value(response.headers["set-cookie"])
    signer = IdSigner(SecretKeys(SECRET))
    verified = signer.verify(sent)
    assert verified is not None and signer.sign(verified[0]) == sent == good
