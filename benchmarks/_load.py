"""Load for the served benchmarks, from a process other than the server's: wrk when it is
installed, else a built-in keep-alive generator on asyncio, so the scripts work on a fresh
machine. Either way: loopback only, bounded in time, and any answer but 200 is an error."""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import time
from dataclasses import dataclass

from benchmarks._http import Connection

_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read \d+, write \d+, timeout (\d+)")
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    """How to load a server: ``tool`` is "wrk" or "built-in"."""

    tool: str
    connections: int
    seconds: float

    @classmethod
    def choose(cls, wanted: str, connections: int, seconds: float) -> Load:
        """``wanted``: "wrk", "built-in", or "auto" (wrk when it is on the PATH)."""
        if wanted == "wrk" and shutil.which("wrk") is None:
            raise SystemExit("--load wrk: wrk is not installed")
        tool = wanted if wanted != "auto" else ("wrk" if shutil.which("wrk") else "built-in")
        if tool == "wrk":
            seconds = max(1, round(seconds))  # wrk takes whole seconds
        return cls(tool, connections, seconds)

    def describe(self) -> str:
        generator = "wrk, 1 thread" if self.tool == "wrk" else "the built-in asyncio generator"
        return f"{self.connections} keep-alive connections from {generator}, {self.seconds:g} s"

    async def measure(
        self, port: int, path: str, cookie: str | None, headers: dict[str, str]
    ) -> tuple[float, float]:
        """Requests per second and p99 latency in ms."""
        if self.tool == "wrk":
            return await self._wrk(port, path, cookie, headers)
        return await self._built_in(port, path, cookie, headers)

    async def _wrk(
        self, port: int, path: str, cookie: str | None, headers: dict[str, str]
    ) -> tuple[float, float]:
        sent = dict(headers)
        if cookie is not None:
            sent["Cookie"] = cookie
        arguments = ["-t1", f"-c{self.connections}", f"-d{self.seconds:g}s", "--latency"]
        for name, value in sent.items():
            arguments += ["-H", f"{name}: {value}"]
        process = await asyncio.create_subprocess_exec(
            "wrk",
            *arguments,
            f"http://127.0.0.1:{port}{path}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output = (await process.communicate())[0].decode()
        return parse_wrk(output, path)

    async def _built_in(
        self, port: int, path: str, cookie: str | None, headers: dict[str, str]
    ) -> tuple[float, float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + self.seconds

        async def worker() -> None:
            connection = Connection(port, cookie=cookie)
            while time.perf_counter() < deadline:
                reply = await connection.get(path, headers)
                if reply.status != 200:
                    raise RuntimeError(f"{path} answered {reply.status}")
                connection.cookie = cookie  # every request carries the same cookie
                latencies.append(reply.seconds)
            await connection.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.connections)))
        elapsed = time.perf_counter() - started
        return len(latencies) / elapsed, statistics.quantiles(latencies, n=100)[98] * 1000


def parse_wrk(output: str, path: str) -> tuple[float, float]:
    """Requests per second and p99 in ms from ``wrk --latency``; an error for anything
    but clean 2xx answers."""
    rate, p99 = _RATE.search(output), _P99.search(output)
    if rate is None or p99 is None:
        raise RuntimeError(f"wrk's output could not be read:\n{output}")
    failed = _NON_2XX.search(output)
    if failed is not None:
        raise RuntimeError(f"{path}: {failed.group(1)} answers were not 2xx")
    errors = _SOCKET_ERRORS.search(output)
    if errors is not None and (int(errors.group(1)) or int(errors.group(2))):
        raise RuntimeError(f"{path}: wrk saw connection errors or timeouts: {errors.group(0)}")
    return float(rate.group(1)), float(p99.group(1)) * _TO_MS[p99.group(2)]
