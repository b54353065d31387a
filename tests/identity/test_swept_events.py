"""``on_event`` hears ``swept`` for each owned session the middleware's own sweep deletes,
on every shell (the ASGI sweeper, and the WSGI and Flask sweep thread) and on the stores
that sweep; anonymous sessions are swept without an event, and without ``on_event`` the
store's sweep is called as it always was. Each sweep is driven by hand
(``sweeper.sweep_once()``) over a store on a test clock: no sleeps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lazysession import MemoryStore, SessionEvent, SessionMiddleware, SQLAlchemyStore, Store
from lazysession._expiry import META_KEY
from lazysession._identity import handle_of
from lazysession.flask import LazySessionInterface
from lazysession.stores._base import OnSwept
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.helpers import SECRET, Clock

pytestmark = pytest.mark.anyio

SHELLS = ["asgi", "wsgi", "flask"]
KINDS = ["memory", "sqlite"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=[(s, k) for s in SHELLS for k in KINDS], ids=lambda p: f"{p[0]}-{p[1]}")
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(case: tuple[str, str], clock: Clock, tmp_path: Path) -> AsyncIterator[Store]:
    shell, kind = case
    if kind == "memory":
        yield MemoryStore(clock=clock)
        return
    driver = "sqlite+aiosqlite" if shell == "asgi" else "sqlite"
    made = SQLAlchemyStore(f"{driver}:///{tmp_path / 'sessions.db'}", clock=clock)
    yield made
    await made.aclose()
    made.sync.close()


def key(n: int) -> str:
    return f"{n:064x}"


async def put(store: Store, clock: Clock, n: int, owner: str | None, *, shell: str) -> None:
    meta: dict[str, Any] = {"c": int(clock().timestamp())}
    if owner is not None:
        meta.update(u=owner, a=clock().timestamp())
    expires = clock() + timedelta(seconds=60)
    if shell == "asgi":
        await store.save(key(n), {"n": n, META_KEY: meta}, expires_at=expires)
    else:
        store.sync.save(key(n), {"n": n, META_KEY: meta}, expires_at=expires)


def middleware(shell: str, store: Store, **options: Any) -> Any:
    """The shell's middleware over ``store``; its sweeper made, not started."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("no request is served here")

    def wsgi(environ: Any, start_response: Any) -> Any:
        raise AssertionError("no request is served here")

    if shell == "asgi":
        return SessionMiddleware(asgi, secret_key=SECRET, store=store, **options)
    if shell == "wsgi":
        return WSGISessionMiddleware(wsgi, secret_key=SECRET, store=store, **options)
    return LazySessionInterface(store, **options)


async def sweep_once(shell: str, shelled: Any) -> None:
    if shell == "asgi":
        await shelled.sweeper.sweep_once()
    else:
        shelled.sweeper.sweep_once()  # what the sweep thread runs, here in this thread


async def expired_pair(store: Store, clock: Clock, shell: str) -> None:
    """Alice's session and an anonymous one, both expired."""
    await put(store, clock, 1, "alice", shell=shell)
    await put(store, clock, 2, None, shell=shell)
    clock.advance(120)


async def test_the_sweep_tells_on_event_of_each_owned_session_it_deletes(
    case: tuple[str, str], store: Store, clock: Clock
) -> None:
    shell = case[0]
    events: list[SessionEvent] = []
    shelled = middleware(shell, store, on_event=events.append)
    await expired_pair(store, clock, shell)
    await sweep_once(shell, shelled)
    assert events == [SessionEvent("swept", handle_of(key(1)), "alice")]  # not the anonymous one
    assert shelled.metrics.swept == 2


async def test_an_async_on_event_is_awaited_or_run_to_completion(
    case: tuple[str, str], store: Store, clock: Clock
) -> None:
    shell = case[0]
    events: list[SessionEvent] = []

    async def heard(event: SessionEvent) -> None:
        events.append(event)

    shelled = middleware(shell, store, on_event=heard)
    await expired_pair(store, clock, shell)
    await sweep_once(shell, shelled)
    assert [(event.kind, event.owner) for event in events] == [("swept", "alice")]


async def test_a_failing_on_event_is_logged_and_the_sweep_goes_on(
    case: tuple[str, str], store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    shell = case[0]
    told: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        told.append(event)
        raise RuntimeError("secret detail")

    shelled = middleware(shell, store, on_event=broken)
    for n in range(3):
        await put(store, clock, n, f"user{n}", shell=shell)
    clock.advance(120)
    with caplog.at_level(logging.INFO, logger="lazysession"):
        await sweep_once(shell, shelled)
    assert len(told) == 3  # each one told, though each one raised
    assert "RuntimeError" in caplog.text and "secret detail" not in caplog.text
    assert "sweep deleted 3 expired sessions" in caplog.text
    assert "sweep failed" not in caplog.text


class Watched(MemoryStore):
    """Records what the middleware hands each side's sweep."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.handed: list[OnSwept | None] = []
        sweep: Any = self.sync.sweep

        def sync_sweep(*, on_swept: OnSwept | None = None) -> int:
            self.handed.append(on_swept)
            deleted: int = sweep(on_swept=on_swept)
            return deleted

        self.sync.sweep = sync_sweep  # type: ignore[method-assign]

    async def sweep(self, *, on_swept: OnSwept | None = None) -> int:
        self.handed.append(on_swept)
        return await super().sweep(on_swept=on_swept)


@pytest.mark.parametrize("shell", SHELLS)
async def test_without_on_event_the_sweep_is_called_as_before(shell: str, clock: Clock) -> None:
    store = Watched(clock)
    shelled = middleware(shell, store)
    await expired_pair(store, clock, shell)
    await sweep_once(shell, shelled)
    assert store.handed == [None]
    assert await store.count() == 0
