"""A TCP forwarder that loses one reply on purpose: the request reaches the server and
runs there, and the client sees its connection reset instead of the answer. That is the
ambiguous moment of every network write (a cable pulled, a NAT entry dropped, a server
restarted just after its commit), made certain instead of timed."""

from __future__ import annotations

import asyncio
import contextlib

from tests.reliability.proxy import Proxy


class ReplyLosingProxy(Proxy):
    """:class:`~tests.reliability.proxy.Proxy`, forwarding at full speed, plus
    :meth:`lose_reply_to`, and a count of the bytes sent through it."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        super().__init__(target_port, target_host)
        self._marker: bytes | None = None
        self.lost = 0
        """Replies lost so far."""
        self.sent = 0
        """Bytes clients sent to the server so far (requests, statements, scripts)."""

    def lose_reply_to(self, marker: bytes) -> None:
        """The next request whose bytes hold ``marker`` is forwarded; the reply to it is
        not: the client's connection is reset when the reply arrives."""
        self._marker = marker

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(upstream_writer)
        doomed = False

        async def requests() -> None:
            nonlocal doomed
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(65536):
                    marker = self._marker
                    if marker is not None and marker in data:
                        self._marker = None
                        doomed = True
                    self.sent += len(data)
                    upstream_writer.write(data)
                    await upstream_writer.drain()
            upstream_writer.transport.abort()

        async def replies() -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await upstream_reader.read(65536):
                    if doomed:
                        self.lost += 1
                        break
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()
            upstream_writer.transport.abort()

        await asyncio.gather(requests(), replies())
        self._writers.discard(writer)
        self._writers.discard(upstream_writer)
