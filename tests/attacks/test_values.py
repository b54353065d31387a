"""Values a handler stores, read back by the next request, on every store: the README's
"what a handler stored is what the next request reads", "a value JSON cannot hold fails
at save time ... never a truncated or silently dropped session", and ``max_size`` "checked
inside the store's atomic merge"."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import anyio
import pytest
import redis

from lazysession import _json
from lazysession._expiry import META_KEY
from lazysession._signing import IdSigner, SecretKeys
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.attacks.apps import NESTED, Held, session_with, started
from tests.helpers import SECRET
from tests.reliability.race_apps import Harness, Shell
from tests.stores.backends import REDIS

pytestmark = pytest.mark.anyio


async def test_a_key_the_handler_stored_reads_back_or_is_refused(memory_harness: Harness) -> None:
    shell = memory_harness.shell()
    written = await shell.get("/write", None, **{META_KEY: "mine", "cart": "3"})
    if written.status != 200:
        return  # refused at save time: what the README promises for what cannot be stored
    assert written.cookie is not None
    read = await started(shell, "/read", written.cookie)
    assert read.data() == {META_KEY: "mine", "cart": "3"}, "a key was dropped silently"


async def test_nested_numbers_and_odd_text_survive_a_merge(asgi_harness: Harness) -> None:
    """Floats, huge ints, -0.0, NUL, line separators and astral characters, nested, stored
    and then merged onto by a request that loaded before them (the store's merge, not the
    writer's whole copy)."""
    shell = asgi_harness.shell()
    cookie = await session_with(shell, cart="3")
    async with anyio.create_task_group() as tasks:
        other = await Held(tasks, shell, "other").send("/write", cookie, theme="dark")
        await started(shell, "/nested", cookie)
        assert (await other.finish()).status == 200
    read = await started(shell, "/read", cookie)
    assert read.body is not None
    assert read.body["nested"] == ["dict", repr(NESTED)]
    assert read.data()["theme"] == "dark"


# -- max_size at the limit ------------------------------------------------------------------

LIMIT = 1000


async def meta_text(harness: Harness, cookie: str) -> str:
    """The session's metadata as a later write stores it (its creation read back as a
    float), as a JSON member."""
    record = await harness.record(cookie)
    assert record is not None
    meta = record.data[META_KEY]
    return _json.dumps({META_KEY: {**meta, "c": float(meta["c"])}})[1:-1]


def filler_for(size: int, present: str, meta: str) -> int:
    """How long a value of the key ``k`` must be for the session holding ``present`` (JSON
    members, without braces) and ``k`` to encode to ``size`` bytes."""
    empty = "{" + ",".join(filter(None, [present, '"k":""', meta])) + "}"
    return size - len(empty.encode())


@pytest.mark.parametrize("over", [0, 1], ids=["at-the-limit", "one-byte-over"])
async def test_max_size_lets_a_merge_reach_the_limit_and_refuses_one_byte_more(
    asgi_harness: Harness, over: int
) -> None:
    """Another request grows the session while this one runs; this one's merge then makes
    it exactly ``max_size`` bytes of JSON (kept) or one byte more (refused, the stored
    session as the other request left it)."""
    shell = asgi_harness.shell(max_size=LIMIT)
    cookie = await session_with(shell, a="1")
    meta = await meta_text(asgi_harness, cookie)
    size = filler_for(LIMIT + over, '"a":"1","b":"é"', meta)
    async with anyio.create_task_group() as tasks:
        late = await Held(tasks, shell, "late").send("/write", cookie, k="x" * size)
        await started(shell, "/write", cookie, b="é")
        answer = await late.finish()
    stored = (await started(shell, "/read", cookie)).data()
    if over:
        assert answer.status >= 500, f"{LIMIT + 1} bytes were accepted: {answer.status}"
        assert stored == {"a": "1", "b": "é"}
    else:
        assert answer.status == 200, f"exactly {LIMIT} bytes were refused: {answer.status}"
        assert stored == {"a": "1", "b": "é", "k": "x" * size}


# -- stored data this process cannot read -----------------------------------------------------

DEEP = 5000
"""Nesting deeper than CPython's JSON decoder takes (its recursion limit), though valid
JSON: what a store holds when a process with a higher limit wrote it, or anyone who can
write to the store."""


DEEP_VALUE = "[" * DEEP + "]" * DEEP


def deep_session_json(created: float) -> str:
    return '{"deep":' + DEEP_VALUE + f',"{META_KEY}":{{"c":{created}}}}}'


async def plant(kind: str, store: object, cookie: str, tmp_path: Path) -> None:
    key = IdSigner(SecretKeys(SECRET)).verify(cookie)
    assert key is not None
    text = deep_session_json(time.time())
    if kind == "sqlite":
        assert isinstance(store, SQLAlchemyStore)
        with sqlite3.connect(tmp_path / "sessions.db") as db:
            table = store.table.name
            db.execute(f"UPDATE {table} SET data = ? WHERE session_id = ?", (text, key[2]))
    else:
        assert isinstance(store, RedisStore)
        client = redis.Redis.from_url(REDIS)
        client.hset(store.prefix + key[2], "d:deep", DEEP_VALUE)
        client.close()


@pytest.mark.parametrize("store_kind", ["sqlite", "redis"])
async def test_stored_json_too_deep_to_decode_reads_as_no_session(
    asgi_harness: Harness, store_kind: str, tmp_path: Path
) -> None:
    shell: Shell = asgi_harness.shell()
    cookie = await session_with(shell, cart="3")
    await plant(store_kind, asgi_harness.store, cookie, tmp_path)
    read = await shell.get("/read", cookie)
    assert read.status == 200, f"a stored session it cannot decode answered {read.status}"
    assert read.data() == {}


QUOTED = '"' * 450
"""A key of characters JSON escapes (a quote takes two bytes in JSON): keys made from
user input can hold them."""


@pytest.mark.parametrize(
    "store_kind",
    [
        "memory",
        "sqlite",
        "postgresql",
        "mysql",
        "redis",
    ],
)
async def test_concurrent_writers_with_quoted_keys_stay_within_max_size(
    asgi_harness: Harness,
) -> None:
    """Each writer's own session fits; together they would not: one is refused."""
    shell = asgi_harness.shell(max_size=LIMIT)
    cookie = await session_with(shell, a="1")
    async with anyio.create_task_group() as tasks:
        late = await Held(tasks, shell, "late").send("/write", cookie, **{QUOTED + "1": "x"})
        first = await shell.get("/write", cookie, **{QUOTED + "2": "y"})
        second = await late.finish()
    assert first.status == 200
    stored = (await started(shell, "/read", cookie)).data()
    size = len(_json.dumps(stored).encode())
    assert size <= LIMIT, f"{size} bytes of JSON stored under max_size={LIMIT}"
    assert second.status >= 500  # SessionTooLarge: refused, not dropped


@pytest.mark.parametrize(
    "store_kind",
    [
        "memory",
        "sqlite",
        "postgresql",
        "mysql",
        "redis",
    ],
)
async def test_a_session_with_quoted_keys_over_a_lowered_max_size_still_shrinks(
    asgi_harness: Harness,
) -> None:
    """The README: "a session already over it (a lowered limit) still accepts writes that
    shrink it"."""
    roomy = asgi_harness.shell(max_size=4 * LIMIT)
    cookie = await session_with(roomy, a="1", **{QUOTED: "x"})
    tight = asgi_harness.shell(max_size=LIMIT // 2)
    popped = await tight.get("/pop", cookie, key="a")
    assert popped.status == 200, f"a write that shrinks the session answered {popped.status}"
    assert (await started(tight, "/read", cookie)).data() == {QUOTED: "x"}
