"""Races the README's guarantees cover, in interleavings the reliability suite does not
force: each request is held at its gate once its session is loaded (``race_apps``), on
every store, through every shell."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from lazysession import MemoryStore, Store
from lazysession.stores import SQLAlchemyStore
from tests.attacks.apps import Held, real_time_clock, session_with, started
from tests.conftest import require_server
from tests.helpers import Clock
from tests.reliability.race_apps import Harness, OpenedStore
from tests.stores.backends import SERVERS, drop_table, server_reachable, with_driver

pytestmark = pytest.mark.anyio


async def test_a_read_that_loaded_before_pin_leaves_the_session_pinned(harness: Harness) -> None:
    """``pin()`` exempts a session from the idle timeout; a read of the same session that
    loaded before the pin and touches after it must not put the idle expiry back (in the
    store, nor in the browser's cookie)."""
    clock = real_time_clock()
    shell = harness.shell(idle_timeout=600, clock=clock)
    cookie = (await started(shell, "/write", None, cart="3", permanent=1)).cookie
    assert cookie is not None
    clock.advance(400)  # past touch_after: a read now moves the expiry
    async with anyio.create_task_group() as tasks:
        read = await Held(tasks, shell, "read").send("/read", cookie)
        pinned = await started(shell, "/pin", cookie, permanent=1)
        late = await read.finish()
    assert pinned.status == 200 and late.status == 200
    record = await harness.record(cookie)
    assert record is not None
    assert record.expires_at > clock.now + timedelta(days=1), (
        f"the pinned session now expires at {record.expires_at}, "
        f"{(record.expires_at - clock.now).total_seconds():.0f} s from now: the late read's "
        "touch undid the pin"
    )


async def test_a_write_that_loaded_before_a_remember_me_keeps_the_longer_lifetime(
    harness: Harness,
) -> None:
    """``set_lifetime()`` ("remember me") is stored with the session; another tab's write
    that loaded before it merges its own keys, and must not put back the lifetime (nor
    the expiry) its stale copy had."""
    shell = harness.shell()
    cookie = await session_with(shell, cart="3", permanent="1")
    month = 30 * 24 * 60 * 60
    async with anyio.create_task_group() as tasks:
        other = await Held(tasks, shell, "other").send("/write", cookie, theme="dark")
        remembered = await started(shell, "/remember", cookie, seconds=month)
        late = await other.finish()
    assert remembered.status == 200 and late.status == 200
    record = await harness.record(cookie)
    assert record is not None
    assert record.data.get("theme") == "dark"  # the other tab's key merged
    meta = record.data["__lazysession__"]
    assert meta.get("l") == month, f"the remembered lifetime was undone: {meta}"
    assert record.expires_at > datetime.now(timezone.utc) + timedelta(days=20)


async def test_a_write_that_loaded_before_a_pin_leaves_the_longer_cookie_alone(
    harness: Harness,
) -> None:
    """Under an idle timeout every write moves the cookie's ``Max-Age``. A write that
    loaded before another tab's ``pin()`` merges onto the pinned copy, whose expiry
    stands in the store; its answer must not shorten the browser's cookie back to the
    idle window, or the browser drops the pinned session after it."""
    clock = real_time_clock()
    shell = harness.shell(idle_timeout=600, clock=clock)
    cookie = (await started(shell, "/write", None, cart="3", permanent=1)).cookie
    assert cookie is not None
    clock.advance(100)  # a write now moves the expiry, and so the cookie's Max-Age
    day = 24 * 60 * 60
    async with anyio.create_task_group() as tasks:
        other = await Held(tasks, shell, "other").send("/write", cookie, theme="dark", permanent=1)
        pinned = await started(shell, "/pin", cookie, permanent=1)
        late = await other.finish()
    assert pinned.status == 200 and late.status == 200
    assert pinned.max_age is not None and pinned.max_age > day
    assert late.max_age is None or late.max_age > day, (
        f"the late write sent Max-Age={late.max_age}: the browser would drop the "
        "pinned session after the idle window"
    )
    record = await harness.record(cookie)
    assert record is not None and record.data.get("theme") == "dark"
    assert record.expires_at > datetime.now(timezone.utc) + timedelta(days=1)


async def test_a_logout_with_a_just_rotated_id_keeps_what_it_wrote_after_logging_out(
    memory_harness: Harness,
) -> None:
    """A tab that set out before the login logs out and leaves a message (``invalidate()``
    then a write, the usual flash): the logout ends the login's session as documented,
    and the message is kept (a new session) or the request is refused, never 200 with
    the write dropped. (The rule is the core's: one store, every shell.)"""
    shell = memory_harness.shell()
    old = await session_with(shell, cart="3")
    login = await started(shell, "/login", old)
    assert login.cookie is not None
    logout = await shell.get("/logout-write", old, flash="logged out")
    assert (await started(shell, "/read", login.cookie)).data() == {}  # the logout held
    if logout.status == 200:
        assert logout.cookie is not None, "answered 200, and the message written was dropped"
        assert (await started(shell, "/read", logout.cookie)).data() == {"flash": "logged out"}
    else:
        assert logout.status == 409


# -- the sweep, racing a request whose session expires while it runs --------------------------


SWEPT = ["memory", "sqlite", "postgresql", "mysql"]


@pytest.fixture(params=SWEPT)
async def swept(
    request: pytest.FixtureRequest, shell_kind: str, tmp_path: Path
) -> AsyncIterator[tuple[Harness, Clock]]:
    """A store on the test's clock (so the sweep sees the session expire), and a shell on
    it, both moved by hand."""
    kind = str(request.param)
    clock = real_time_clock()
    sync = shell_kind != "asgi"
    store: Store
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if kind == "memory":
        store = MemoryStore(clock=clock)
    else:
        table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'sessions.db'}"
            driver = "sqlite" if sync else "sqlite+aiosqlite"
        else:
            if not server_reachable(SERVERS[kind]):
                require_server(f"no {kind} server at {SERVERS[kind]}")
            sync_drivers = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
            async_drivers = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy"}
            url = with_driver(SERVERS[kind], sync_drivers[kind])
            driver = sync_drivers[kind] if sync else async_drivers[kind]
        sql = SQLAlchemyStore(with_driver(url, driver), table_name=table, clock=clock)
        store = sql

        def cleanup() -> None:
            drop_table(url, table)
            sql.sync.close()

    opened = OpenedStore(store, cleanup, sync)
    try:
        yield Harness(opened, shell_kind), clock
    finally:
        await opened.close()


async def sweep(harness: Harness) -> int:
    if harness.opened.sync:
        return await anyio.to_thread.run_sync(harness.store.sync.sweep)
    return await harness.store.sweep()


async def test_a_write_whose_session_was_swept_while_it_ran_is_refused_not_dropped(
    swept: tuple[Harness, Clock],
) -> None:
    """The session expires (idle) while a request that loaded it runs; the sweep deletes
    it; the request then writes: a 409, no cookie, and the session stays gone."""
    harness, clock = swept
    shell = harness.shell(idle_timeout=600, clock=clock)
    cookie = (await started(shell, "/write", None, cart="3", permanent=1)).cookie
    assert cookie is not None
    clock.advance(599)
    async with anyio.create_task_group() as tasks:
        late = Held(tasks, shell, "late")
        await late.send("/write", cookie, theme="dark", permanent=1)
        clock.advance(2)  # the session's idle window ends while the request runs
        assert await sweep(harness) == 1
        answer = await late.finish()
    assert answer.status == 409, f"answered {answer.status}: the write was dropped or revived"
    assert not answer.sets_cookie
    assert await harness.count() == 0


# -- a logout with an id several logins old ---------------------------------------------------


@pytest.mark.parametrize(
    "logins",
    [
        4,
        5,
        20,
    ],
)
async def test_a_logout_with_an_id_several_logins_old_leaves_no_id_reading_the_data(
    asgi_harness: Harness, logins: int
) -> None:
    """A browser logs in again and again within the minute ids are remembered (a "sudo
    mode" that regenerates on every privilege step, say); a tab still holding the first
    id logs out. The README: a logout sent with a just-rotated id ends the session it was
    rotated to, "so a logout racing a login, in any order, leaves no id readable"."""
    shell = asgi_harness.shell()
    first = await session_with(shell, cart="3")
    cookies = [first]
    for _ in range(logins):
        reply = await started(shell, "/login", cookies[-1])
        assert reply.cookie is not None
        cookies.append(reply.cookie)
    await started(shell, "/logout", first)
    for n, cookie in enumerate(cookies):
        assert (await started(shell, "/read", cookie)).data() == {}, (
            f"after the logout, the id of login {n} still reads the user's data"
        )
