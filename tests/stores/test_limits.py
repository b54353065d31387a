"""The pieces that bound store calls, on their own: the async deadline, connections kept
per event loop, the liveness check of an idle connection, and the blocking watchdog."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from lazysession import StoreError
from lazysession.stores._limits import (
    GRACE_SHARE,
    Bounded,
    BoundedSync,
    PerLoop,
    Watchdog,
    looks_dead,
    remaining,
    tracked,
    tracked_sync,
)


def test_a_block_past_its_deadline_is_a_store_error_naming_the_timeout() -> None:
    async def hang() -> None:
        with Bounded("loading a session", (OSError,), 0.05):
            await asyncio.sleep(10)

    with pytest.raises(StoreError, match=r"loading a session failed: no answer .*0\.05 s"):
        asyncio.run(asyncio.wait_for(hang(), 5))


def test_a_clean_up_that_swallows_the_cancellation_is_cancelled_again() -> None:
    swallowed = []

    async def graceful_close_that_waits() -> None:
        with Bounded("saving a session", (), 0.05):
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed.append(True)  # a driver waiting on a server that will not answer
                await asyncio.sleep(10)

    started = time.perf_counter()
    with pytest.raises(StoreError):
        asyncio.run(graceful_close_that_waits())
    assert swallowed == [True]
    assert time.perf_counter() - started < 1


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        async def call() -> None:
            with Bounded("loading a session", (), 5):
                await asyncio.sleep(10)

        task = asyncio.create_task(call())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_block_that_ends_in_time_leaves_nothing_behind() -> None:
    async def main() -> float:
        with Bounded("loading a session", (), 0.05):
            inside = remaining(99)
        await asyncio.sleep(0.1)  # no late cancellation arrives
        assert remaining(99) == 99
        return inside

    assert 0 < asyncio.run(main()) <= 0.05


def test_driver_errors_are_store_errors() -> None:
    async def fail() -> None:
        with Bounded("deleting a session", (OSError,), 5):
            raise ConnectionResetError(104, "reset")

    with pytest.raises(StoreError, match="deleting a session failed: ConnectionResetError"):
        asyncio.run(fail())


def test_each_event_loop_gets_its_own_resource_closed_when_the_loop_ends() -> None:
    opened: list[int] = []
    closed: list[int] = []

    async def close(resource: int) -> None:
        closed.append(resource)

    def open_one() -> int:
        opened.append(len(opened))
        return opened[-1]

    per_loop = PerLoop(open_one, close)

    async def use() -> int:
        first, again = per_loop.get(), per_loop.get()
        assert first == again
        return first

    assert [asyncio.run(use()), asyncio.run(use())] == [0, 1]
    assert closed == [0, 1]


def test_aclose_closes_this_loops_resource_and_the_next_call_opens_another() -> None:
    closed: list[object] = []

    async def close(resource: object) -> None:
        closed.append(resource)

    per_loop: PerLoop[object] = PerLoop(object, close)

    async def main() -> None:
        first = per_loop.get()
        await per_loop.aclose()
        assert closed == [first]
        assert per_loop.get() is not first

    asyncio.run(main())
    assert len(closed) == 2  # the second, at the loop's end


def test_an_idle_connection_whose_peer_closed_looks_dead() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert not looks_dead(ours)  # has fileno(): idle, nothing to read
        theirs.close()
        assert looks_dead(ours)
    finally:
        ours.close()


def test_the_watchdog_cuts_a_connection_that_does_not_answer_by_its_deadline() -> None:
    ours, theirs = socket.socketpair()
    try:
        ticket = Watchdog.instance().arm(ours, 0.05)
        ours.settimeout(5)
        started = time.perf_counter()
        assert ours.recv(1) == b""  # shut down: the wait ends
        assert time.perf_counter() - started < 1
        Watchdog.instance().disarm(ticket)
    finally:
        ours.close()
        theirs.close()


def test_a_disarmed_watchdog_leaves_the_connection_alone() -> None:
    ours, theirs = socket.socketpair()
    try:
        Watchdog.instance().disarm(Watchdog.instance().arm(ours, 0.02))
        time.sleep(0.1)
        theirs.sendall(b"x")
        ours.settimeout(1)
        assert ours.recv(1) == b"x"
    finally:
        ours.close()
        theirs.close()


def test_a_write_in_flight_at_the_deadline_is_given_time_to_answer() -> None:
    async def commit_answering_late() -> str:
        with Bounded("saving a session", (), 0.1):
            # answers past the deadline, within the grace
            return await tracked(True, asyncio.sleep(0.12, "committed"))

    assert asyncio.run(commit_answering_late()) == "committed"


def test_a_write_that_never_answers_is_cut_after_the_grace() -> None:
    async def commit_never_answering() -> None:
        with Bounded("saving a session", (), 0.1):
            await tracked(True, asyncio.sleep(10))

    started = time.perf_counter()
    with pytest.raises(StoreError, match="no answer"):
        asyncio.run(commit_never_answering())
    assert time.perf_counter() - started < 0.1 * (1 + GRACE_SHARE) + 0.2


def test_a_read_in_flight_at_the_deadline_is_cut_at_once() -> None:
    async def read_never_answering() -> None:
        with Bounded("loading a session", (), 0.1):
            await tracked(False, asyncio.sleep(10))

    started = time.perf_counter()
    with pytest.raises(StoreError, match="no answer"):
        asyncio.run(read_never_answering())
    assert time.perf_counter() - started < 0.1 + 0.1


def test_past_the_deadline_the_next_step_is_not_sent() -> None:
    sent: list[str] = []

    def next_step_after_the_deadline() -> None:
        with BoundedSync("rotating a session", (), 0.01):
            time.sleep(0.02)
            tracked_sync(True, sent.append, "retire the old id")

    with pytest.raises(StoreError, match="no answer"):
        next_step_after_the_deadline()
    assert sent == []
