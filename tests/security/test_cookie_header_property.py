"""Any ``Cookie`` header, valid cookies bent every way included (issue 15, evidence).

For each example a real session is written, then a header is built around its cookie:
the valid value, edits of it (bytes inserted, removed, replaced, appended, latin-1
padding, spare bits), quotes, other names, junk, several values of the one name. Must
hold: never a 500; the session loads exactly when the valid value is, byte for byte, one
of the first values of its name; the store is asked only for that one; and a
``Set-Cookie`` carries only a value the server signed.
"""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazysession import Store
from lazysession._cookies import SAME_NAME_LIMIT
from lazysession._signing import DataSigner, IdSigner, SecretKeys
from tests.helpers import SECRET, RecordingStore
from tests.security.asgi import call, middleware, session_cookie
from tests.security.cookies import MUTATIONS, SIGNED_ID

KEYS = SecretKeys(SECRET)
LATIN_1 = st.characters(max_codepoint=255)


def edited(value: str, at: int, removed: int, inserted: str) -> str:
    at %= len(value) + 1
    return value[:at] + inserted + value[at + removed :]


def values_around(valid: str) -> st.SearchStrategy[str]:
    edits = st.builds(
        edited,
        st.just(valid),
        st.integers(0, 10_000),
        st.integers(0, 3),
        st.text(LATIN_1, max_size=6),
    )
    bent = st.sampled_from([mutate(valid) for mutate in MUTATIONS.values()])
    return st.one_of(st.just(valid), edits, bent, st.text(LATIN_1, max_size=40))


def headers_around(valid: str) -> st.SearchStrategy[str]:
    name = st.sampled_from(["session", " session", "session\t", "Session", "sessionx", "a"])
    quoted = st.booleans()
    cookie = st.builds(
        lambda n, v, q: f'{n}="{v}"' if q else f"{n}={v}", name, values_around(valid), quoted
    )
    part = cookie | st.text(LATIN_1, max_size=12)
    separator = st.sampled_from(["; ", ";", " ; ", ";;"])
    return st.tuples(st.lists(part, min_size=1, max_size=2 * SAME_NAME_LIMIT + 2), separator).map(
        lambda t: t[1].join(t[0])
    )


def candidates(header: str) -> list[str]:
    """The values of ``session`` a browser-shaped parse finds, the first few."""
    found = []
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        if sep and key.strip(" \t") == "session":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found.append(value)
    return found[:SAME_NAME_LIMIT]


def check(store: Store | None, data: st.DataObject) -> None:
    asgi = middleware(store)
    valid = anyio.run(session_cookie, asgi).decode()
    header = data.draw(headers_around(valid), label="header")
    path = data.draw(st.sampled_from(["/read", "/add"]), label="path")
    if isinstance(store, RecordingStore):
        store.calls.clear()
    status, seen, headers = anyio.run(call, asgi, header.encode("latin-1"), path)
    assert status == 200
    genuine = valid in candidates(header)
    assert (seen.get("user") == "ada") == genuine
    if isinstance(store, RecordingStore):
        assert store.calls["load"] == genuine
        assert set(store.calls) <= {"load", "save", "update", "touch"}
    sent = headers.get(b"set-cookie")
    if sent is not None:
        value = sent.decode("latin-1").split(";", 1)[0].split("=", 1)[1]
        assert signed_by_us(value, server_side=store is not None)


def signed_by_us(value: str, *, server_side: bool) -> bool:
    if server_side:
        return bool(SIGNED_ID.fullmatch(value)) and IdSigner(KEYS).verify(value) is not None
    return DataSigner(KEYS).unsign(value) is not None


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.data())
def test_any_cookie_header_on_a_server_store(data: Any) -> None:
    check(RecordingStore(), data)


@PROPERTY
@given(st.data())
def test_any_cookie_header_on_the_cookie_store(data: Any) -> None:
    check(None, data)
