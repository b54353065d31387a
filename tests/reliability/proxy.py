"""A TCP forwarder on loopback that a test can break in the ways networks and servers
break: real connection faults, without mocking any client.

- ``down()``: refuse new connections and drop every open one (a crashed server, a cut link).
- ``black_hole()``: accept connections and data, never answer (a hung server, a firewall
  that drops packets). ``up()`` afterwards drops the connections that lost data to it.
- ``slow(seconds)``: forward, each chunk after ``seconds`` of added latency, in both
  directions (a congested or distant link).
- ``mute()``: forward what clients send, drop every answer (a link that fails one way:
  the server carries out each statement, the client never learns its outcome).
  ``up()`` afterwards drops the connections whose answers were lost.
- ``up()``: forward at full speed again.

``connections`` counts the client connections accepted so far, so a test can check how
many a pool opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0
        self._latency = 0.0
        self._black_hole = False
        self._mute = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._swallowed: set[asyncio.StreamWriter] = set()
        self._thread.start()

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    def up(self) -> None:
        """Accept and forward connections, at full speed."""
        self._call(self._up())

    def down(self) -> None:
        """Refuse new connections and drop every open one."""
        self._call(self._down())

    def black_hole(self) -> None:
        """Accept connections and data from clients; never answer, never forward."""
        self._call(self._set(black_hole=True, latency=0.0))

    def mute(self) -> None:
        """Forward what clients send; drop every answer."""
        self._call(self._set(black_hole=False, latency=0.0, mute=True))

    def slow(self, seconds: float) -> None:
        """Forward each chunk, either way, after ``seconds`` of added latency."""
        self._call(self._set(black_hole=False, latency=seconds))

    def close(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _stop(self) -> None:
        await self._down()  # every connection reset: the handlers end by themselves
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=2)

    async def _set(self, *, black_hole: bool, latency: float, mute: bool = False) -> None:
        await self._listen()
        self._black_hole, self._latency, self._mute = black_hole, latency, mute

    async def _up(self) -> None:
        await self._set(black_hole=False, latency=0.0)
        for writer in list(self._swallowed):  # they lost data: a reset is the honest answer
            writer.transport.abort()
        self._swallowed.clear()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._swallowed.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        if self._black_hole:
            await self._swallow(reader, writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(upstream_writer)

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, answers: bool
        ) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await source.read(65536):
                    if self._black_hole or (answers and self._mute):
                        self._swallowed.update((writer, upstream_writer))
                        continue
                    if self._latency:
                        await asyncio.sleep(self._latency)
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(
            pipe(reader, upstream_writer, False), pipe(upstream_reader, writer, True)
        )
        self._writers.discard(writer)
        self._writers.discard(upstream_writer)

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._swallowed.add(writer)
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass
        writer.transport.abort()
        self._writers.discard(writer)
        self._swallowed.discard(writer)


@contextlib.contextmanager
def proxy_to(port: int) -> Iterator[Proxy]:
    proxy = Proxy(port)
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.close()
