#!/usr/bin/env python3
"""Attack the guarantees: concurrent tabs, logins, logouts and Bearer calls while the store
is cut, slowed and restored, against uvicorn with two workers.

200 browsers (each with its own cookie jar; "tabs" are concurrent requests that share it)
write keys, pop them while other tabs write, log in with ``regenerate()`` while another
tab writes, and log out; 1,000 Bearer calls run beside them. The store (PostgreSQL, and
Redis) is reached through a TCP proxy on loopback that the run cuts for a few seconds,
then slows (added latency per chunk), then restores. At the end every browser reads its
session back, and every cookie it held before a logout is replayed. Printed:

- keys lost: writes answered 200 that are missing at the end (a write racing its own
  browser's login or logout is left out: that window is documented);
- logged-out sessions readable: a cookie held before a logout that still reads the user's
  data;
- dead cookies: a browser left holding a cookie that reads nothing;
- server over the bound: answers the server took longer to start than the documented
  bound (the store timeout, half of it more for a write already sent, and 0.25 s),
  timed in the app (``Server-Timing``), outside the session middleware;
- of them, loop late: those whose excess the worker's event loop was late by, in one
  go, while they ran (it times itself: ``lag`` in ``Server-Timing``); a deadline's timer
  fires only once the loop gets to it;
- client over: requests that took the client longer than the store timeout plus one
  second, queues on this machine's two shared cores included;
- other 5xx: any 5xx but the documented 503;
- 503s and 409s: counted apart (the documented answers while the store is down, and to a
  write whose session a login or logout in another tab ended or moved meanwhile);
- sessions stored, against browsers holding a cookie.

    python benchmarks/chaos.py [--stores postgresql,redis] [--seconds 30] [--browsers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import redis
import sqlalchemy as sa
from tests.reliability.proxy import Proxy

from benchmarks._server import reachable, uvicorn_serving
from benchmarks._table import machine_line, markdown_table

HERE = Path(__file__).resolve().parent

POSTGRES_PORT = int(os.environ.get("CHAOS_POSTGRES_PORT", "5432"))
REDIS_PORT = int(os.environ.get("CHAOS_REDIS_PORT", "6379"))
TIMEOUT = 2.0
SLACK = 1.0  # seconds past the store timeout a request may take (server and client work)
SERVER_BOUND = TIMEOUT * 1.5 + 0.25
"""The documented bound on a request's store calls (the timeout, and half of it more for
a write already sent), and a quarter second for the handler and the event loop."""
USER_DATA = "user"


def server_timing(response: httpx.Response, name: str) -> float | None:
    """A ``Server-Timing`` metric's duration, in seconds: ``app``, how long the server
    took to start the answer; ``lag``, the longest its event loop ran late meanwhile."""
    for metric in response.headers.get("server-timing", "").split(","):
        label, found, duration = metric.strip().partition(";dur=")
        if found and label == name:
            return float(duration) / 1000
    return None


def server_seconds(response: httpx.Response) -> float | None:
    """How long the server took to start the answer, as ``Server-Timing`` says."""
    return server_timing(response, "app")


@dataclass
class Tally:
    samples: list[str] = field(default_factory=list)
    """A few of the unexpected answers, for ``--explain``."""
    ok: int = 0
    unavailable: int = 0
    interrupted: int = 0
    other_5xx: int = 0
    over_bound: int = 0
    server_over: int = 0
    """Answers the server itself took longer than the documented bound to start."""
    loop_late: int = 0
    """Of those, the ones whose excess the worker's event loop was late by in one go
    while they ran: a deadline's timer fires only when the loop gets to it."""
    requests: int = 0
    slowest: float = 0.0

    def count(
        self, status: int, seconds: float, server: float | None = None, lag: float = 0.0
    ) -> None:
        self.requests += 1
        if server is not None and server > SERVER_BOUND:
            self.server_over += 1
            if lag >= server - SERVER_BOUND:
                self.loop_late += 1
        self.slowest = max(self.slowest, seconds)
        if seconds > TIMEOUT + SLACK:
            self.over_bound += 1
        if status == 503:
            self.unavailable += 1
        elif status == 409:
            self.interrupted += 1
        elif status >= 500:
            self.other_5xx += 1
        else:
            self.ok += 1


@dataclass
class Browser:
    http: httpx.AsyncClient
    tally: Tally
    expected: dict[str, str] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    logged_out: list[list[str]] = field(default_factory=list)
    """The cookies held before each logout: none may read the user's data again."""
    held: list[str] = field(default_factory=list)
    serial: int = 0
    trace: list[str] = field(default_factory=list)
    """What this browser sent and got, for ``--explain``."""

    async def send(self, method: str, path: str, **params: str) -> int:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, params=params)
        except httpx.HTTPError as error:
            self.tally.count(599, time.perf_counter() - started)  # no answer: counted as a 5xx
            if len(self.tally.samples) < 5:
                self.tally.samples.append(f"{method} {path}: {type(error).__name__} {error}")
            return 599
        server = server_seconds(response)
        lag = server_timing(response, "lag") or 0.0
        self.tally.count(response.status_code, time.perf_counter() - started, server, lag)
        status = response.status_code
        if server is not None and server > SERVER_BOUND and len(self.tally.samples) < 10:
            self.tally.samples.append(
                f"{method} {path} {status} took {server:.2f} s in the app; "
                f"its event loop was once {lag:.2f} s late meanwhile"
            )
        sent = response.request.headers.get("cookie", "")[8:16] or "-"
        got = response.headers.get("set-cookie", "")[8:16] or "-"
        self.trace.append(f"{path} {status} {sent}>{got}")
        if status >= 500 and status != 503 and len(self.tally.samples) < 5:
            self.tally.samples.append(f"{method} {path} {status}: {response.text[:160]!r}")
        cookie = self.http.cookies.get("session")
        if cookie and (not self.held or self.held[-1] != cookie):
            self.held.append(cookie)
        return response.status_code

    async def write(self, *, racing: bool = False) -> None:
        self.serial += 1
        key, value = f"k{self.serial}", uuid.uuid4().hex[:8]
        if racing:
            self.uncertain.add(key)
        status = await self.send("POST", "/write", **{key: value})
        if status == 200 and not racing:
            self.expected[key] = value
        elif status != 200:
            self.uncertain.add(key)

    async def pop(self) -> None:
        keys = [k for k in self.expected if k != USER_DATA]
        if not keys:
            return
        key = random.choice(keys)
        if await self.send("POST", "/pop", key=key) == 200:
            self.expected.pop(key, None)
        else:
            self.uncertain.add(key)

    async def login(self) -> None:
        if await self.send("POST", "/login", user="ada") == 200:
            self.expected[USER_DATA] = "ada"
        else:
            self.uncertain.add(USER_DATA)

    async def logout(self) -> None:
        cookies = list(self.held)
        status = await self.send("POST", "/logout")
        if status == 200:
            self.logged_out.append(cookies)
            self.expected.clear()
            self.uncertain.clear()
            self.held = [c for c in self.held if c not in cookies]
        else:  # the logout may have happened: the session's keys are in doubt
            self.uncertain.update(self.expected)

    async def step(self) -> None:
        roll = random.random()
        if not self.http.cookies.get("session"):
            # No session yet: one tab at a time. Two first writes at once would each mint a
            # session (nothing ties them together), and the browser keeps the last cookie.
            await (self.login() if roll < 0.3 else self.write())
        elif roll < 0.40:
            await self.write()
        elif roll < 0.55:
            await asyncio.gather(self.write(), self.write())  # two tabs write at once
        elif roll < 0.68:
            # A pop races two writes: they must survive, unless the pop found the session
            # holding nothing else and ended it first (then the writes ended with it).
            ends = len(self.expected) <= 1
            await asyncio.gather(self.pop(), self.write(racing=ends), self.write(racing=ends))
        elif roll < 0.74:
            await self.login()
        elif roll < 0.80:
            await asyncio.gather(self.login(), self.write(racing=True))  # a tab writes at login
        elif roll < 0.84:
            await self.logout()
        elif roll < 0.87:
            await asyncio.gather(self.logout(), self.write(racing=True))
        else:
            await self.send("GET", "/read")


async def bearer_calls(base: str, count: int, tally: Tally, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for i in range(count):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            response = await http.get("/api", headers={"authorization": f"Bearer t{i}"})
            took = time.perf_counter() - started
            tally.count(response.status_code, took, server_seconds(response))
            await asyncio.sleep(0.005)


async def faults(proxy: Proxy, seconds: float, log: list[str]) -> None:
    """Cut the store for a few seconds, then slow it, then restore it."""
    await asyncio.sleep(seconds * 0.25)
    log.append("cut")
    await asyncio.to_thread(proxy.down)
    await asyncio.sleep(3)
    await asyncio.to_thread(proxy.up)
    slow = getattr(proxy, "slow", None)
    await asyncio.sleep(seconds * 0.15)
    if slow is not None:
        log.append("slowed")
        await asyncio.to_thread(slow, 0.3)
        await asyncio.sleep(4)
        await asyncio.to_thread(slow, 0.0)
    log.append("restored")


async def attack(base: str, proxy: Proxy, browsers: int, seconds: float) -> dict[str, Any]:
    tally = Tally()
    limits = httpx.Limits(max_connections=4)
    crowd = [
        Browser(httpx.AsyncClient(base_url=base, timeout=30, limits=limits), tally)
        for _ in range(browsers)
    ]
    deadline = time.monotonic() + seconds
    log: list[str] = []

    async def live(browser: Browser) -> None:
        while time.monotonic() < deadline:
            await browser.step()

    await asyncio.gather(
        faults(proxy, seconds, log),
        bearer_calls(base, 1000, tally, deadline),
        *(live(b) for b in crowd),
    )
    lost = readable = dead = holding = 0
    stranger = httpx.AsyncClient(base_url=base, timeout=30)  # replays with no cookie jar
    for browser in crowd:
        http = browser.http
        response = await http.get("/read")
        session = response.json() if response.status_code == 200 else {}
        if http.cookies.get("session"):
            holding += 1
            if not session:
                dead += 1
                if len(tally.samples) < 10:
                    tally.samples.append(f"dead cookie: {', '.join(browser.trace[-24:])}")
        for key, value in browser.expected.items():
            if key not in browser.uncertain and session.get(key) != value:
                lost += 1
                if len(tally.samples) < 10:
                    history = ", ".join(
                        browser.trace[-12:] if len(tally.samples) else browser.trace
                    )
                    tally.samples.append(f"lost {key}={value}; read back {session}: {history}")
        for cookies in browser.logged_out:
            for cookie in cookies:
                replay = await stranger.get("/read", headers={"cookie": f"session={cookie}"})
                if replay.status_code == 200 and USER_DATA in replay.json():
                    readable += 1
                    if len(tally.samples) < 10:
                        near = [f"#{i} {t}" for i, t in enumerate(browser.trace) if cookie[:8] in t]
                        history = ", ".join(near[:12])
                        tally.samples.append(f"readable {cookie[:8]} after logout: {history}")
        await http.aclose()
    await stranger.aclose()
    return {
        "tally": tally,
        "lost": lost,
        "readable": readable,
        "dead": dead,
        "holding": holding,
        "faults": " > ".join(log),
    }


def stored_sessions(kind: str, name: str) -> int:
    """Sessions held (rotation markers left out), read straight from the store."""
    if kind == "postgresql":
        engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
        with engine.connect() as conn:
            query = f"SELECT count(*) FROM {name} WHERE data NOT LIKE '=>%%'"
            count = int(conn.exec_driver_sql(query).scalar_one())
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            conn.commit()
        engine.dispose()
        return count
    client = redis.Redis(port=REDIS_PORT)
    keys = list(client.scan_iter(match=name + "*", count=1000))
    count = sum(1 for key in keys if not client.hexists(key, "r"))
    for key in keys:
        client.delete(key)
    return count


def run(kind: str, browsers: int, seconds: float) -> tuple[list[object], list[str]]:
    port = POSTGRES_PORT if kind == "postgresql" else REDIS_PORT
    proxy = Proxy(port)
    proxy.up()
    name = f"lazysession_chaos_{uuid.uuid4().hex[:8]}"
    if kind == "postgresql":
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test"
        env = {"CHAOS_TABLE": name}
    else:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        name += ":"
        env = {"CHAOS_PREFIX": name}
    env.update(CHAOS_STORE_URL=url, CHAOS_TIMEOUT=str(TIMEOUT))
    try:
        # Keep-alive past the cut: a connection the server closed while a browser sat idle
        # would fail the browser's next request in the client, not in the server.
        keep = ("--timeout-keep-alive", "120")
        with uvicorn_serving("chaos_app:app", HERE, env, *keep, workers=2) as server:
            base = f"http://127.0.0.1:{server}"
            httpx.post(f"{base}/write", params={"warm": "up"})  # creates the table
            found = asyncio.run(attack(base, proxy, browsers, seconds))
    finally:
        proxy.close()
    tally: Tally = found["tally"]
    stored = stored_sessions(kind, name)
    row: list[object] = [
        kind,
        tally.requests,
        found["lost"],
        found["readable"],
        found["dead"],
        tally.server_over,
        tally.loop_late,
        tally.over_bound,
        tally.other_5xx,
        tally.unavailable,
        tally.interrupted,
        f"{stored} / {found['holding']}",
        f"{tally.slowest:.2f}",
        found["faults"],
    ]
    return row, tally.samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="postgresql,redis")
    parser.add_argument("--browsers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--explain", action="store_true", help="print unexpected answers")
    args = parser.parse_args()
    rows = []
    samples: list[str] = []
    for kind in args.stores.split(","):
        default = POSTGRES_PORT if kind == "postgresql" else REDIS_PORT
        if not reachable(f"tcp://127.0.0.1:{default}", default):
            print(f"skipping {kind}: no server on 127.0.0.1:{default}")
            continue
        row, found = run(kind, args.browsers, args.seconds)
        rows.append(row)
        samples += [f"{kind}: {sample}" for sample in found]
    header = [
        "store",
        "requests",
        "keys lost",
        "logged-out readable",
        "dead cookies",
        f"server over {SERVER_BOUND:.2f} s",
        "of them, loop late",
        f"client over {TIMEOUT + SLACK:.0f} s",
        "other 5xx",
        "503 (documented)",
        "409 (documented)",
        "stored / holding a cookie",
        "slowest s",
        "faults",
    ]
    print(f"\n{args.browsers} browsers, {args.seconds:.0f} s each store, uvicorn --workers 2")
    print(machine_line())
    print(markdown_table(header, rows))
    if args.explain:
        print("\n".join(samples))
    failed = any(row[2] or row[3] or row[4] or row[5] or row[7] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
