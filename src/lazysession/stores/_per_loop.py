"""Connections kept per event loop.

Rules:
- Connections belong to the event loop that opened them. :class:`PerLoop` keeps one
  client or engine per running loop, opens it on the loop's first call, and closes it
  when the loop ends (its runner cancels the task that watches for that) or when
  ``aclose()`` is called from that loop (the ASGI lifespan's shutdown). A store is usable
  again after ``aclose()``: the next call opens new connections.
- Outside asyncio (trio, or no loop) one resource is shared and closed by ``aclose()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger("lazysession")

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One resource (a client, an engine) per running event loop, made by ``open`` on the
    loop's first call and closed by ``close`` when the loop ends or on ``aclose()``.
    Outside asyncio (trio, or no loop) one resource is shared and closed by ``aclose()``."""

    __slots__ = ("_by_loop", "_close", "_last", "_last_loop", "_open")

    def __init__(self, open: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._open = open
        self._close = close
        self._by_loop: dict[object, tuple[T, asyncio.Task[None] | None]] = {}
        self._last_loop: object = None
        self._last: T | None = None

    def get(self) -> T:
        """This loop's resource, opened now if it has none."""
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:
            loop = _NO_LOOP
        if loop is self._last_loop:
            return self._last  # type: ignore[return-value]
        entry = self._by_loop.get(loop)
        if entry is None:
            entry = self._start(loop)
        self._last_loop, self._last = loop, entry[0]
        return entry[0]

    def _start(self, loop: object) -> tuple[T, asyncio.Task[None] | None]:
        self._forget_closed_loops()
        resource = self._open()
        watcher = None
        if isinstance(loop, asyncio.AbstractEventLoop):
            watcher = loop.create_task(
                self._close_when_the_loop_ends(loop, resource),
                name="lazysession: closes the store's connections when this loop ends",
            )
        entry = self._by_loop[loop] = (resource, watcher)
        return entry

    async def _close_when_the_loop_ends(self, loop: object, resource: T) -> None:
        try:
            await asyncio.Event().wait()  # until cancelled, by the loop's runner at its end
        finally:
            if self._drop(loop, resource):
                await self._quietly_close(resource)

    def _drop(self, loop: object, resource: T) -> bool:
        entry = self._by_loop.get(loop)
        if entry is None or entry[0] is not resource:
            return False
        del self._by_loop[loop]
        if self._last_loop is loop:
            self._last_loop, self._last = None, None
        return True

    def _forget_closed_loops(self) -> None:
        """Loops closed without cancelling their tasks took their connections with them;
        let go of what is left of those."""
        for loop in [k for k in self._by_loop if getattr(k, "is_closed", lambda: False)()]:
            self._drop(loop, self._by_loop[loop][0])

    async def _quietly_close(self, resource: T) -> None:
        try:
            await self._close(resource)
        except Exception as error:  # closing is best effort; the loop is ending
            logger.debug("lazysession: closing a store's connections failed: %r", error)

    def opened(self) -> list[T]:
        return [resource for resource, _ in self._by_loop.values()]

    async def aclose(self) -> None:
        """Close this loop's resource (the next call opens a new one)."""
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:
            loop = _NO_LOOP
        entry = self._by_loop.get(loop)
        if entry is None:
            return
        resource, watcher = entry
        self._drop(loop, resource)
        if watcher is not None:
            watcher.cancel()
        await self._close(resource)

    def close_unused(self, close: Callable[[T], None]) -> None:
        """Close, without a loop, what no running loop holds (at the blocking side's
        close): resources of loops that have ended."""
        for loop, (resource, _) in list(self._by_loop.items()):
            if loop is _NO_LOOP or getattr(loop, "is_closed", lambda: False)():
                self._drop(loop, resource)
                close(resource)


_NO_LOOP = object()
