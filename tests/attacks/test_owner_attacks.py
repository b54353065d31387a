"""Attacks on the per-owner session index, as an outsider would try them: reaching another
owner's session by its handle, becoming an owner by writing session data, racing a
``revoke_all`` with logins and writes, passing the per-owner cap with logins at once,
owner strings that might collide or break key patterns, a handle used as a cookie,
erasure that leaves data behind, and a Redis index that outlives or predeceases its
sessions.

Every race is forced with gates (``race_apps``): a request held after its session loaded
and let go only once the store call under attack has returned. Each attack runs on every
store kind (memory, sqlite, postgresql, mysql, redis) and, where a request carries it,
through every shell (ASGI, WSGI, Flask)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa

from lazysession import Store
from lazysession._cli_owners import erase
from lazysession._identity import handle_of
from lazysession._signing import IdSigner, SecretKeys
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.attacks.apps import Held, session_with, started
from tests.conftest import require_server
from tests.helpers import SECRET, Clock
from tests.reliability import race_apps
from tests.reliability.race_apps import ASGIShell, Harness
from tests.stores.backends import (
    CASES,
    NATIVE_EXPIRY,
    REDIS,
    SERVERS,
    SQL_DRIVERS,
    StoreCase,
    drop_table,
    forget_keys,
    server_reachable,
    with_driver,
)
from tests.stores.test_owners import HOUR, handles, key, log_in

if TYPE_CHECKING:
    from lazysession import Session

pytestmark = pytest.mark.anyio

ODD_OWNERS = [
    "a",
    "a*",
    "ab",
    "a?",
    "a[b]",
    "[ab]",
    "a:b",
    "a:",
    "owner:a",
    "a\nb",
    "a\\",
    "a b",
    "%",
    "_",
    "a\u0308",
    "\U0001f600",
    "\u65e5\u672c",
    "{a}",
    "x" * 255,
    "\U0001f600" * 255,
]
"""Owners that differ by one character a key pattern, a LIKE, a collation or a column
width could fold together ('a*' and 'ab', 'a:' and 'a', '%' and '_'). Owners that differ
only by case, accent or trailing space are ``FOLDED_OWNERS``."""

FOLDED_OWNERS = ["a", "A", "\u00e4", "a "]
"""Owners a case-, accent- or pad-insensitive comparison would take for one."""


# -- handler actions the attacks add to the race apps ------------------------------------


def _owner_login(session: Session, args: dict[str, str]) -> None:
    session.regenerate(owner=args["owner"])
    session["user"] = args["owner"]


def _rotate(session: Session, args: dict[str, str]) -> None:
    session.regenerate()


def _forge(session: Session, args: dict[str, str]) -> None:
    """What a handler that copies request input into the session might write: the owner
    field's name at the top level, the metadata key itself by each way a dict is set."""
    owner, how = args["owner"], args["how"]
    forged = {"u": owner, "a": 1.0, "c": 1}
    if how == "plain":
        session.update({"u": owner, "owner": owner, "_owner": owner, "__lazysession": forged})
    elif how == "setitem":
        session["__lazysession__"] = forged
    elif how == "update":
        session.update({"__lazysession__": forged})
    elif how == "kwargs":
        session.update(__lazysession__=forged)
    elif how == "pairs":
        session.update([("__lazysession__", forged)])
    elif how == "setdefault":
        session.setdefault("__lazysession__", forged)
    elif how == "ior":
        session |= {"__lazysession__": forged}


def _long_owner(session: Session, args: dict[str, str]) -> None:
    try:
        session.regenerate(owner=args["char"] * int(args["n"]))
    except ValueError as error:
        session["refused"] = type(error).__name__
        return
    session["user"] = "long"


ACTIONS: dict[str, Callable[[Session, dict[str, str]], None]] = {
    "owner-login": _owner_login,
    "rotate": _rotate,
    "forge": _forge,
    "long-owner": _long_owner,
}
for _name, _action in ACTIONS.items():
    race_apps.ACTIONS.setdefault(_name, _action)


# -- helpers --------------------------------------------------------------------------------

_IDS = IdSigner(SecretKeys(SECRET))


def store_key_of(cookie: str) -> str:
    found = _IDS.verify(cookie)
    assert found is not None, "not a cookie of ours"
    return found[2]


def handle_of_cookie(cookie: str) -> str:
    return handle_of(store_key_of(cookie))


async def on_store(harness: Harness, name: str, *args: Any, **kwargs: Any) -> Any:
    """``store.<name>(...)`` on the side the harness's shell uses."""
    if harness.opened.sync:
        method = getattr(harness.store.sync, name)
        return await anyio.to_thread.run_sync(lambda: method(*args, **kwargs))
    return await getattr(harness.store, name)(*args, **kwargs)


async def listed(harness: Harness, owner: str) -> list[str]:
    return [info.handle for info in await on_store(harness, "sessions_of", owner)]


async def alive(harness: Harness, cookie: str | None) -> bool:
    if cookie is None:
        return False
    return await on_store(harness, "load", store_key_of(cookie)) is not None


async def login(
    harness: Harness, shell: race_apps.Shell, owner: str, cookie: str | None = None
) -> str:
    reply = await started(shell, "/owner-login", cookie, owner=owner)
    assert reply.cookie is not None
    return reply.cookie


# -- 1. a handle of another owner's session grants owner A nothing ----------------------


async def test_an_owner_cannot_revoke_another_owners_session_by_its_handle(
    harness: Harness,
) -> None:
    shell = harness.shell()
    bob = await login(harness, shell, "bob")
    alice = await login(harness, shell, "alice")
    bobs = handle_of_cookie(bob)
    assert await on_store(harness, "revoke", "alice", bobs) is False
    assert await on_store(harness, "revoke_all", "alice", keep=bobs) == 1
    assert await listed(harness, "bob") == [bobs]
    assert (await started(shell, "/read", bob)).data() == {"user": "bob"}
    assert not await alive(harness, alice)


# -- 2. writing session data never makes an owner ---------------------------------------


@pytest.mark.parametrize(
    "how", ["plain", "setitem", "update", "kwargs", "pairs", "setdefault", "ior"]
)
async def test_a_handler_cannot_name_an_owner_by_writing_session_data(
    harness: Harness, how: str
) -> None:
    """Only ``regenerate(owner=...)`` names an owner: the metadata key is refused however
    it is set (the request fails, nothing is written), and look-alike keys are data."""
    shell = harness.shell()
    cookie = await session_with(shell, cart="1")
    reply = await shell.get("/forge", cookie, owner="mallory", how=how)
    if how == "plain":
        assert reply.status == 200
        assert reply.data()["u"] == "mallory"
    else:
        assert reply.status == 500
    assert await listed(harness, "mallory") == []
    record = await harness.record(cookie)
    assert record is not None and not record.retired
    meta = record.data.get("__lazysession__") or {}
    assert meta.get("u") is None
    assert meta.get("a") is None


# -- 3. revoke_all racing a login, a re-login and a write --------------------------------


@pytest.mark.parametrize("start", ["fresh", "anonymous", "owned"])
async def test_a_login_racing_revoke_all_either_ends_or_is_listed(
    harness: Harness, start: str
) -> None:
    """The login's request loaded its session (none, an anonymous one, or one of alice's
    own: a re-login), then ``revoke_all`` ran, then the login saved: its session is dead,
    or alive and listed. A re-login from a revoked session must not bring it back."""
    shell = harness.shell()
    other = await login(harness, shell, "alice")
    cookie: str | None = None
    if start == "anonymous":
        cookie = await session_with(shell, cart="1")
    elif start == "owned":
        cookie = await login(harness, shell, "alice")
    async with anyio.create_task_group() as tasks:
        held = await Held(tasks, shell, "login").send("/owner-login", cookie, owner="alice")
        ended = await on_store(harness, "revoke_all", "alice")
        assert ended == (2 if start == "owned" else 1)
        reply = await held.finish()
    assert not await alive(harness, other)
    new = reply.cookie
    names = await listed(harness, "alice")
    if await alive(harness, new):
        assert new is not None
        assert names == [handle_of_cookie(new)]
    else:
        assert names == []
    if start == "owned":
        assert not await alive(harness, new), "a re-login brought back a revoked session"
        assert not await alive(harness, cookie)


async def test_a_write_racing_revoke_all_never_resurrects_the_session(harness: Harness) -> None:
    """The write loaded alice's session, ``revoke_all`` ended it, then the write merged:
    it finds the session gone, the cookie reads empty after, and nothing is listed."""
    shell = harness.shell()
    cookie = await login(harness, shell, "alice")
    async with anyio.create_task_group() as tasks:
        held = await Held(tasks, shell, "write").send("/write", cookie, note="late")
        assert await on_store(harness, "revoke_all", "alice") == 1
        reply = await held.finish()
    assert not await alive(harness, cookie)
    assert await listed(harness, "alice") == []
    if reply.cookie is not None and reply.cookie != cookie:
        record = await harness.record(reply.cookie)
        assert record is None or "user" not in record.data
    after = await started(shell, "/read", cookie)
    assert after.data() == {}
    assert await listed(harness, "alice") == []


async def test_a_revoked_browsers_next_request_is_anonymous_and_holds_no_data(
    harness: Harness,
) -> None:
    shell = harness.shell()
    cookie = await login(harness, shell, "alice")
    await started(shell, "/write", cookie, secret="s3cret")
    assert await on_store(harness, "revoke", "alice", handle_of_cookie(cookie)) is True
    read = await started(shell, "/read", cookie)
    assert read.data() == {}
    assert not read.sets_cookie
    # The ended id is as good as unknown (``_core`` rule 10): a write with it starts a new,
    # anonymous session, which holds nothing of alice's and is not hers.
    reply = await started(shell, "/write", cookie, x="1")
    assert reply.cookie is not None and reply.cookie != cookie
    assert (await started(shell, "/read", reply.cookie)).data() == {"x": "1"}
    assert await listed(harness, "alice") == []
    record = await harness.record(cookie)
    assert record is None or (record.retired and record.data == {})


# -- 4. the per-owner cap against logins at once -----------------------------------------


async def test_two_logins_at_once_keep_at_most_the_cap(harness: Harness) -> None:
    """Two logins loaded, then both let go together, with one session of alice's already
    held and a cap of 2: whatever order their saves and listings take, at most 2 stay."""
    shell = harness.shell(max_sessions_per_owner=2)
    first = await login(harness, shell, "alice")
    async with anyio.create_task_group() as tasks:
        one = await Held(tasks, shell, "one").send("/owner-login", None, owner="alice")
        two = await Held(tasks, shell, "two").send("/owner-login", None, owner="alice")
        shell.gates.open("one")
        shell.gates.open("two")
        replies = [await one.finish(), await two.finish()]
    cookies = [first, *(r.cookie for r in replies)]
    live = [c for c in cookies if await alive(harness, c)]
    assert len(live) <= 2
    assert set(await listed(harness, "alice")) == {handle_of_cookie(c) for c in live if c}
    assert all(r.status == 200 and r.cookie for r in replies)


async def test_two_logins_at_once_under_a_cap_of_one_leave_one_of_them_alive(
    asgi_harness: Harness,
) -> None:
    """Login A saves and stops before its cap listing; login B saves, lists and trims;
    then A lists and trims. The cap holds, and one login that answered 200 lives."""
    harness = asgi_harness
    store = harness.store
    listing_reached, listing_go = anyio.Event(), anyio.Event()
    real_sessions_of = store.sessions_of
    calls = 0

    async def gated_sessions_of(owner: str) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # login A's cap listing: held until B is done
            listing_reached.set()
            with anyio.fail_after(20):
                await listing_go.wait()
        return await real_sessions_of(owner)

    shell = harness.shell(max_sessions_per_owner=1)
    first = await login(harness, shell, "alice")
    calls = 0
    store.sessions_of = gated_sessions_of  # type: ignore[method-assign]
    async with anyio.create_task_group() as tasks:
        a = await Held(tasks, shell, "a").send("/owner-login", None, owner="alice")
        b = await Held(tasks, shell, "b").send("/owner-login", None, owner="alice")
        shell.gates.open("a")
        with anyio.fail_after(20):
            await listing_reached.wait()
        b_reply = await b.finish()
        listing_go.set()
        a_reply = await a.finish()
    store.sessions_of = real_sessions_of  # type: ignore[method-assign]
    assert a_reply.status == b_reply.status == 200
    assert not await alive(harness, first)
    live = [c for c in (a_reply.cookie, b_reply.cookie) if c and await alive(harness, c)]
    assert len(live) == 1, "both logins were revoked by each other"
    assert await listed(harness, "alice") == [handle_of_cookie(live[0])]


async def test_the_handle_of_the_pre_login_id_revokes_nothing(harness: Harness) -> None:
    """The anonymous session's handle (shown before the login) names an id that is now
    a marker pointing at the login's session: revoking it as the owner ends nothing."""
    shell = harness.shell()
    anonymous = await session_with(shell, cart="1")
    owned = await login(harness, shell, "alice", anonymous)
    assert await on_store(harness, "revoke", "alice", handle_of_cookie(anonymous)) is False
    for junk in ["*", "%", "_" * 16, "?" * 16, "", handle_of_cookie(owned).upper()]:
        assert await on_store(harness, "revoke", "alice", junk) is False, junk
    assert await alive(harness, owned)
    assert await listed(harness, "alice") == [handle_of_cookie(owned)]


# -- 5. odd owner strings -----------------------------------------------------------------

KINDS = {
    "memory": "memory",
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "redis": "redis",
}


@pytest.fixture(params=list(KINDS))
async def owned(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[StoreCase, Store, Clock]]:
    """A store of each kind, on a clock the test moves."""
    made = CASES[KINDS[request.param]](tmp_path, request)
    clock = Clock()
    if made.name in NATIVE_EXPIRY:
        clock.now = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        yield made, made.open(clock, 1000), clock
    finally:
        await made.cleanup()


async def test_odd_owner_strings_never_share_an_index(
    owned: tuple[StoreCase, Store, Clock],
) -> None:
    """Each owner lists its own session only, and revoking one ends no other's: no key
    pattern, LIKE, collation, case or width folds two of ``ODD_OWNERS`` together."""
    _, store, clock = owned
    mine = {}
    for n, owner in enumerate(ODD_OWNERS):
        mine[owner] = await log_in(store, clock, n, owner, user=owner)
    for owner in ODD_OWNERS:
        assert await handles(store, owner) == [mine[owner]], repr(owner)
    for probe in ["*", "a%", "a_", "[a]*", "?", "", "x" * 254, "owner:*"]:
        assert await handles(store, probe) == [], repr(probe)
    assert await store.revoke_all("a*") == 1
    assert await store.revoke("a", mine["ab"]) is False
    for n, owner in enumerate(ODD_OWNERS):
        expected = [] if owner == "a*" else [mine[owner]]
        assert await handles(store, owner) == expected, repr(owner)
        if owner != "a*":
            assert await store.load(key(n)) is not None, repr(owner)


@pytest.mark.parametrize(
    "owned",
    KINDS,
    indirect=True,
)
async def test_owners_differing_by_case_accent_or_trailing_space_are_distinct(
    owned: tuple[StoreCase, Store, Clock],
) -> None:
    """Owner ids are compared exactly: 'A' can neither list nor revoke the sessions of
    'a', '\u00e4' or 'a ' (an app whose user ids are names, or e-mail addresses, would
    otherwise let one account log another out, or see its devices)."""
    _, store, clock = owned
    mine = {}
    for n, owner in enumerate(FOLDED_OWNERS):
        mine[owner] = await log_in(store, clock, n, owner, user=owner)
    for owner in FOLDED_OWNERS:
        assert await handles(store, owner) == [mine[owner]], repr(owner)
    assert await store.revoke("A", mine["a"]) is False
    assert await store.revoke_all("A") == 1
    for owner in ("a", "\u00e4", "a "):
        assert await handles(store, owner) == [mine[owner]], repr(owner)


@pytest.mark.parametrize("char", ["x", "\U0001f600"])
async def test_an_owner_past_255_characters_is_refused_at_regenerate(
    harness: Harness, char: str
) -> None:
    """``regenerate(owner=...)`` raises ValueError in the handler (before the request's
    store I/O); 255 characters, even astral ones, are taken and listed whole."""
    shell = harness.shell()
    refused = await started(shell, "/long-owner", None, char=char, n=256)
    assert refused.data() == {"refused": "ValueError"}
    assert await listed(harness, char * 256) == []
    assert await listed(harness, char * 255) == []
    taken = await started(shell, "/long-owner", None, char=char, n=255)
    assert taken.data() == {"user": "long"}
    assert taken.cookie is not None
    assert await listed(harness, char * 255) == [handle_of_cookie(taken.cookie)]


# -- 6. expired sessions are never listed, swept or not ----------------------------------


async def test_sessions_of_never_lists_an_expired_session_before_the_sweep(
    owned: tuple[StoreCase, Store, Clock],
) -> None:
    case, store, clock = owned
    touched = await log_in(store, clock, 1, "alice")
    await log_in(store, clock, 2, "alice")
    clock.advance(1800)
    assert await store.touch(key(1), expires_at=clock() + HOUR)
    clock.advance(1801)  # past the untouched one's expiry, not the touched one's
    assert await handles(store, "alice") == [touched]
    if case.name not in NATIVE_EXPIRY:
        assert await store.count() == 2  # no sweep ran: the expired row is still held
    clock.advance(1800)
    assert await handles(store, "alice") == []
    assert await store.revoke_all("alice") == 0


# -- 7. a handle is no cookie -------------------------------------------------------------


async def test_a_cookie_made_from_a_handle_grants_nothing(harness: Harness) -> None:
    shell = harness.shell()
    cookie = await login(harness, shell, "alice")
    handle = handle_of_cookie(cookie)
    skey = store_key_of(cookie)
    for forged in [handle, _IDS.sign(handle), skey, _IDS.sign(skey), _IDS.sign(skey[:43])]:
        reply = await shell.get("/read", forged)
        assert reply.status == 200, forged
        assert reply.data() == {}, forged
    assert await listed(harness, "alice") == [handle]
    assert (await started(shell, "/read", cookie)).data() == {"user": "alice"}


# -- 8. erasure leaves nothing readable under any id the owner held ----------------------

ERASE_KINDS = ["sqlite", "postgresql", "mysql", "redis"]


@pytest.fixture(params=ERASE_KINDS)
async def erasable(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, str, dict[str, str], Callable[[], list[str]]]]:
    """A store the CLI can open by URL; the CLI's options for it, and a dump of every
    value it holds (raw rows, raw hash fields)."""
    kind = request.param
    if kind == "redis":
        if not server_reachable(REDIS):
            require_server(f"no redis server at {REDIS}")
        prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
        redis_store = RedisStore(REDIS, prefix=prefix)

        def dump_redis() -> list[str]:
            client = redis_store.check_sync()
            out = []
            for name in client.scan_iter(match=prefix + "*"):
                kind_of = client.type(name)
                kind_text = kind_of.decode() if isinstance(kind_of, bytes) else kind_of
                if kind_text == "hash":
                    out += [repr(v) for v in client.hgetall(name).values()]
                elif kind_text == "zset":
                    out += [repr(v) for v in client.zrange(name, 0, -1)]
                else:
                    out.append(repr(name))
            return out

        try:
            yield redis_store, REDIS, {"prefix": prefix}, dump_redis
        finally:
            forget_keys(redis_store)
            await redis_store.aclose()
        return
    table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
    sync_driver, async_driver = SQL_DRIVERS[kind]
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        if not server_reachable(SERVERS[kind]):
            require_server(f"no {kind} server at {SERVERS[kind]}")
        url = with_driver(SERVERS[kind], sync_driver)
    sql_store = SQLAlchemyStore(with_driver(url, async_driver), table_name=table)

    def dump_sql() -> list[str]:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(f"SELECT * FROM {table}")).fetchall()
        finally:
            engine.dispose()
        return [repr(value) for row in rows for value in row]

    try:
        yield sql_store, with_driver(url, async_driver), {"table": table}, dump_sql
    finally:
        await sql_store.aclose()
        drop_table(url, table)
        sql_store.sync.close()


async def test_erase_leaves_no_data_under_any_id_the_owner_held(
    erasable: tuple[Store, str, dict[str, str], Callable[[], list[str]]],
) -> None:
    """Before the login (C0: secret s0), after it (C1: s1), after a plain regenerate (C2:
    s2), a second device (D: s3); ``lazysession erase --yes``; no id reads data, and no
    stored value anywhere holds a secret."""
    store, url, options, dump = erasable
    shell = ASGIShell(store=store, sweep_interval=None)
    c0 = await session_with(shell, s0="secret-zero")
    c1 = await login_on(shell, c0)
    await started(shell, "/write", c1, s1="secret-one")
    rotated = await started(shell, "/rotate", c1)
    assert rotated.cookie is not None
    c2 = rotated.cookie
    await started(shell, "/write", c2, s2="secret-two")
    d = await login_on(shell, None)
    await started(shell, "/write", d, s3="secret-three")
    assert any("secret-two" in value for value in await anyio.to_thread.run_sync(dump))
    assert await erase(url, "alice", confirm=None, **options) == 2
    for cookie in (c0, c1, c2, d):
        record = await store.read(store_key_of(cookie))
        assert record is None or (record.retired and record.data == {}), cookie
        assert (await started(shell, "/read", cookie)).data() == {}
    held = await anyio.to_thread.run_sync(dump)
    for secret in ("secret-zero", "secret-one", "secret-two", "secret-three"):
        assert not any(secret in value for value in held), (secret, held)
    assert not any("alice" in value and "user" in value for value in held), held
    assert await store.sessions_of("alice") == []


async def login_on(shell: race_apps.Shell, cookie: str | None) -> str:
    reply = await started(shell, "/owner-login", cookie, owner="alice")
    assert reply.cookie is not None
    return reply.cookie


# -- 9. the Redis index lives exactly as long as it must ---------------------------------


@pytest.fixture
def redis_store() -> Any:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    store = RedisStore(REDIS, prefix=f"lazysession-test:{uuid.uuid4().hex[:12]}:")
    try:
        yield store
    finally:
        forget_keys(store)


async def test_the_redis_index_carries_a_ttl_and_outlives_every_live_session(
    redis_store: RedisStore,
) -> None:
    """The index always has a TTL (never persists), at least as long as its longest-lived
    session's, also after a touch and an update push a session far past the index's
    recorded life; once every session is revoked it is gone or still expiring."""
    from lazysession import Changes
    from lazysession._expiry import META_KEY

    store = redis_store.sync
    client = redis_store.check_sync()
    index = redis_store._ops.index_key("alice")
    now = datetime.now(timezone.utc)
    owned_meta = {"c": int(now.timestamp()), "u": "alice", "a": now.timestamp()}
    store.save(key(1), {"n": 0, META_KEY: owned_meta}, expires_at=now + timedelta(seconds=60))
    store.save(key(2), {"n": 0, META_KEY: owned_meta}, expires_at=now + timedelta(seconds=60))

    def index_outlives(n: int) -> None:
        index_ttl = client.pttl(index)
        session_ttl = client.pttl(redis_store._ops.key(key(n)))
        assert index_ttl > 0, index_ttl  # -1: it would never expire; -2: it is gone
        assert session_ttl > 0
        assert index_ttl >= session_ttl, (index_ttl, session_ttl)

    index_outlives(1)
    assert client.pttl(index) <= (60 + 2 * 86400) * 1000  # bounded: it expires eventually
    assert store.touch(key(1), expires_at=now + timedelta(days=5))
    index_outlives(1)
    changes = Changes(set={"n": 1})
    changes.own_meta = False
    assert store.update(key(2), changes, expires_at=now + timedelta(days=30))
    index_outlives(2)
    index_outlives(1)
    assert [i.handle for i in store.sessions_of("alice")] == [
        handle_of(key(2)),
        handle_of(key(1)),
    ]
    assert store.revoke_all("alice") == 2
    assert client.exists(index) == 0 or client.pttl(index) > 0
