"""``encrypt=True`` with a server store (issue 15, item 9), on every store and shell.

What a dump of the table, of Redis or of the memory store shows is ciphertext: no value,
no key name. What an attacker who can write to the store does with it (a value copied
into another session, under another key, a whole session copied under another id, a
flipped byte, a session sealed under another secret key) makes that session read as
absent, with a normal response, never a 500 and never part of a session. Merges, logins
and logouts keep working, and a retired key still decrypts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from lazysession import _json
from lazysession._expiry import META_KEY
from lazysession.stores import Record
from lazysession.stores._base import origin_of
from tests.crypto.stores import dump, key_of, new_cookie, put, stored
from tests.helpers import SECRET
from tests.reliability import race_apps
from tests.reliability.race_apps import SHELLS, STORES, Harness, Shell, open_store
from tests.reliability.test_races import Held, started

pytestmark = pytest.mark.anyio

MARKER = "marker-4f1d9c2e-never-in-a-dump"
KEY_NAME = "card_number_keyname_7b3e"
NEW_KEY = "crypt-new-secret-" + "n" * 24


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg and asyncmy run on asyncio only


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SHELLS)
def shell_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def harness(store_kind: str, shell_kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    opened = open_store(store_kind, tmp_path, sync=shell_kind != "asgi")
    try:
        yield Harness(opened, shell_kind)
    finally:
        await opened.close()


@pytest.fixture
def secret_keys(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``use(harness, keys)``: a shell whose secret keys are ``keys`` (the first current)."""

    def use(harness: Harness, keys: list[str]) -> Shell:
        if harness.shell_kind != "flask":
            monkeypatch.setattr(race_apps, "SECRET", keys)
            return harness.shell(encrypt=True)
        shell = harness.shell(encrypt=True)
        app: Any = shell.app  # type: ignore[attr-defined]  # a ThreadShell's Flask app
        app.config["SECRET_KEY"] = keys[0]
        app.config["SECRET_KEY_FALLBACKS"] = keys[1:]
        return shell

    return use


async def session_of(shell: Shell, **values: str) -> str:
    reply = await started(shell, "/write", None, **values)
    assert reply.cookie is not None
    return reply.cookie


async def read(shell: Shell, cookie: str) -> dict[str, Any]:
    reply = await started(shell, "/read", cookie)
    return reply.data()


def field_holding(record: Record) -> str:
    """The one stored field of ``record`` besides its metadata."""
    fields = [name for name in record.data if name != META_KEY]
    assert len(fields) == 1, fields
    return fields[0]


# -- what works ------------------------------------------------------------------------------


async def test_a_session_reads_back_written_merged_rotated_and_ended(harness: Harness) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada", role="admin")
    assert await read(shell, cookie) == {"user": "ada", "role": "admin"}
    await started(shell, "/write", cookie, cart="3")
    await started(shell, "/pop", cookie, key="role")
    assert await read(shell, cookie) == {"user": "ada", "cart": "3"}
    login = await started(shell, "/login", cookie, user="bob")
    assert login.cookie is not None
    assert await read(shell, login.cookie) == {"user": "bob", "cart": "3"}
    await started(shell, "/clear-write", login.cookie, only="this")
    assert await read(shell, login.cookie) == {"only": "this"}
    out = await started(shell, "/logout", login.cookie)
    assert out.expired
    assert await read(shell, login.cookie) == {}


async def test_a_dump_of_the_store_holds_no_value_and_no_key_name(harness: Harness) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, **{KEY_NAME: MARKER, "user": "ada-lovelace"})
    await started(shell, "/write", cookie, other=MARKER)
    login = await started(shell, "/login", cookie, user="ada-lovelace")
    assert login.cookie is not None
    assert await read(shell, login.cookie) == {
        KEY_NAME: MARKER,
        "user": "ada-lovelace",
        "other": MARKER,
    }
    everything = dump(harness.store)
    assert META_KEY in everything  # the dump is of the right store
    for secret in (MARKER, KEY_NAME, "ada-lovelace", "user", "other"):
        assert secret not in everything


async def test_without_encryption_the_dump_shows_the_marker(harness: Harness) -> None:
    shell = harness.shell()
    await session_of(shell, **{KEY_NAME: MARKER})
    assert MARKER in dump(harness.store) and KEY_NAME in dump(harness.store)


async def test_two_tabs_writing_different_keys_both_keep_their_write(harness: Harness) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada")
    async with anyio.create_task_group() as tasks:
        first = await Held(tasks, shell, "first").send("/write", cookie, theme="dark")
        second = await Held(tasks, shell, "second").send("/write", cookie, cart="3")
        assert (await second.finish()).status == 200
        assert (await first.finish()).status == 200
    assert await read(shell, cookie) == {"user": "ada", "theme": "dark", "cart": "3"}


async def test_a_removal_merged_with_another_tabs_write_removes_the_right_field(
    harness: Harness,
) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada", flash="saved")
    async with anyio.create_task_group() as tasks:
        popping = await Held(tasks, shell, "pop").send("/pop", cookie, key="flash")
        writing = await Held(tasks, shell, "write").send("/write", cookie, cart="3")
        assert (await writing.finish()).status == 200
        assert (await popping.finish()).status == 200
    assert await read(shell, cookie) == {"user": "ada", "cart": "3"}


async def test_the_store_still_reads_the_origin_of_a_rotated_session(
    harness: Harness, store_kind: str
) -> None:
    if store_kind == "memory":
        pytest.skip("MemoryStore rotates in one step, under its lock: it records no origin")
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada")
    login = await started(shell, "/login", cookie)
    assert login.cookie is not None
    record = await stored(harness, login.cookie)
    # The store wrote Meta.origin into the metadata, which stays in the clear for it.
    assert origin_of(_json.dumps(record.data)) == key_of(cookie, SECRET)
    assert await read(shell, login.cookie) == {"user": "ada"}


# -- what an attacker with write access gets: nothing ------------------------------------------


async def test_a_value_copied_into_another_session_reads_as_absent(harness: Harness) -> None:
    shell = harness.shell(encrypt=True)
    victim = await session_of(shell, user="ada")
    attacker = await session_of(shell, user="eve")
    theirs, mine = await stored(harness, victim), await stored(harness, attacker)
    field = field_holding(theirs)
    assert field == field_holding(mine)  # one key name, one field name, in every session
    await put(harness, key_of(attacker, SECRET), {**mine.data, field: theirs.data[field]})
    assert await read(shell, attacker) == {}
    assert await read(shell, victim) == {"user": "ada"}


async def test_a_value_moved_under_another_key_reads_as_absent(harness: Harness) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada")
    other = await session_of(shell, role="guest")
    role_field = field_holding(await stored(harness, other))
    record = await stored(harness, cookie)
    user_field = field_holding(record)
    moved = {META_KEY: record.data[META_KEY], role_field: record.data[user_field]}
    await put(harness, key_of(cookie, SECRET), moved)
    assert await read(shell, cookie) == {}


async def test_a_whole_session_copied_under_another_id_reads_as_absent(harness: Harness) -> None:
    shell = harness.shell(encrypt=True)
    victim = await session_of(shell, user="ada")
    attacker = await session_of(shell, user="eve")
    await put(harness, key_of(attacker, SECRET), (await stored(harness, victim)).data)
    assert await read(shell, attacker) == {}


@pytest.mark.parametrize(
    "tamper",
    [
        "a flipped character",
        "a truncated value",
        "a value that is not a string",
        "a changed creation time",
        "a longer lifetime",
        "another binding",
        "no tag",
    ],
)
async def test_a_tampered_session_reads_as_absent(harness: Harness, tamper: str) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada")
    record = await stored(harness, cookie)
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in record.data.items()}
    field, meta = field_holding(record), data[META_KEY]
    value = data[field]
    if tamper == "a flipped character":
        data[field] = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    elif tamper == "a truncated value":
        data[field] = value[:-4]
    elif tamper == "a value that is not a string":
        data[field] = {"user": "admin"}
    elif tamper == "a changed creation time":
        meta["c"] = meta["c"] + 86400
    elif tamper == "a longer lifetime":
        meta["l"] = 10**9
    elif tamper == "another binding":
        meta["s"] = meta["s"][::-1]
    else:
        del meta["t"]
    await put(harness, key_of(cookie, SECRET), data)
    assert await read(shell, cookie) == {}
    fresh = await started(shell, "/write", cookie, user="eve")  # a write mints a new id
    assert fresh.cookie is not None and fresh.cookie != cookie


async def test_a_session_sealed_under_another_secret_key_reads_as_absent(
    harness: Harness, secret_keys: Any
) -> None:
    shell = harness.shell(encrypt=True)
    cookie = await session_of(shell, user="ada")
    sealed = (await stored(harness, cookie)).data
    other = secret_keys(harness, [NEW_KEY])
    foreign, key = new_cookie(NEW_KEY)
    await put(harness, key, sealed)  # signed for the other key, sealed with the first
    assert await read(other, foreign) == {}


async def test_a_session_readable_only_without_encryption_reads_as_absent_with_it(
    harness: Harness,
) -> None:
    # Plain JSON in the store is no session once encryption is on: else whoever can
    # write to the store could plant one.
    plain = await session_of(harness.shell(), user="ada")
    assert await read(harness.shell(encrypt=True), plain) == {}


# -- key rotation -----------------------------------------------------------------------------


async def test_a_retired_key_still_decrypts(harness: Harness, secret_keys: Any) -> None:
    cookie = await session_of(secret_keys(harness, [SECRET]), user="ada", role="admin")
    rotated = secret_keys(harness, [NEW_KEY, SECRET])
    assert await read(rotated, cookie) == {"user": "ada", "role": "admin"}


async def test_the_next_write_reencrypts_under_the_new_key(
    harness: Harness, secret_keys: Any, store_kind: str
) -> None:
    cookie = await session_of(secret_keys(harness, [SECRET]), user="ada", role="admin")
    rotated = secret_keys(harness, [NEW_KEY, SECRET])
    reply = await started(rotated, "/write", cookie, role="owner")
    assert reply.cookie is not None  # re-signed with the new key
    record = await stored(harness, reply.cookie, NEW_KEY)
    fields = [field for field in record.data if field != META_KEY]
    assert len(fields) == 2  # the rewritten key's old field is gone
    new_only = secret_keys(harness, [NEW_KEY])
    if store_kind == "redis":
        # Redis merges every write key by key: what was written is under the new key,
        # the rest until it is written (so the retired key stays listed, as for signing).
        assert await read(new_only, reply.cookie) == {}
        assert await read(rotated, reply.cookie) == {"user": "ada", "role": "owner"}
    else:
        # The write found the stored copy as it had loaded it: it stored the whole
        # session, every value under the new key.
        assert await read(new_only, reply.cookie) == {"user": "ada", "role": "owner"}
