"""A small HTTP/1.1 keep-alive client on asyncio streams, for load from one process
without the overhead of a full client library. Loopback only, by construction."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class Connection:
    """One keep-alive connection to 127.0.0.1:port, with a cookie jar of one cookie."""

    port: int
    cookie: str | None = None
    _reader: asyncio.StreamReader | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self._reader, self._writer

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        reader, writer = await self._open()
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        started = time.perf_counter()
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        reply_headers: list[tuple[str, str]] = []
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            reply_headers.append((name, value))
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                pair = value.split(";", 1)[0]
                self.cookie = None if "Max-Age=0" in value else pair
        body = await reader.readexactly(length) if length else b""
        return Reply(status, reply_headers, body, time.perf_counter() - started)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
