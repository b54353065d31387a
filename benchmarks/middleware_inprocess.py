#!/usr/bin/env python3
"""What the middleware costs per request, with the app called in-process (no server).

Stacks: the bare app, Starlette's SessionMiddleware, starsessions (memory store, autoload),
lazysession with the cookie store and with MemoryStore, each also with ``encrypt=True``.
Scenarios: a route that never touches the session; a Bearer request whose handler writes
to the session; a read and a write with a valid cookie. Rounds are interleaved (every
stack in turn, repeated) and the table gives medians with their spread, and each figure as
a ratio to the bare app and to Starlette's middleware; an encrypted stack also as a ratio
to the same stack unencrypted (the cost of encryption), all taken within each round.

    python benchmarks/middleware_inprocess.py [--rounds 9] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from benchmarks._floors import FLOORS, LazyMinimum, PassThrough, measured_in
from benchmarks._table import machine_line, markdown_table, median_and_spread
from lazysession import MemoryStore
from lazysession import SessionMiddleware as LazySessionMiddleware

SECRET = "benchmark-secret-" + "x" * 20

Scope = dict[str, Any]


async def untouched(request: Request) -> Response:
    return PlainTextResponse("ok")


async def read(request: Request) -> Response:
    user = request.session.get("user") if "session" in request.scope else None
    return PlainTextResponse(str(user))


async def write(request: Request) -> Response:
    if "session" in request.scope:
        request.session["hits"] = request.session.get("hits", 0) + 1
        request.session.setdefault("user", "ada")
    return PlainTextResponse("ok")


ROUTES = [Route("/untouched", untouched), Route("/read", read), Route("/write", write)]


def stacks() -> dict[str, Starlette]:
    made: dict[str, Starlette] = {
        "bare app": Starlette(routes=ROUTES),
        "pass-through wrapper (floor)": Starlette(
            routes=ROUTES, middleware=[Middleware(PassThrough)]
        ),
        "lazy minimum (floor)": Starlette(routes=ROUTES, middleware=[Middleware(LazyMinimum)]),
        "starlette SessionMiddleware": Starlette(
            routes=ROUTES, middleware=[Middleware(StarletteSessionMiddleware, secret_key=SECRET)]
        ),
    }
    try:
        import starsessions

        made["starsessions (memory)"] = Starlette(
            routes=ROUTES,
            middleware=[
                Middleware(
                    starsessions.SessionMiddleware,
                    store=starsessions.InMemoryStore(),
                    cookie_https_only=False,
                    lifetime=3600,
                ),
                Middleware(starsessions.SessionAutoloadMiddleware),
            ],
        )
    except ImportError:
        print("starsessions is not installed: its rows are left out", file=sys.stderr)
    made["lazysession (cookie)"] = Starlette(
        routes=ROUTES, middleware=[Middleware(LazySessionMiddleware, secret_key=SECRET)]
    )
    made["lazysession (MemoryStore)"] = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                LazySessionMiddleware,
                secret_key=SECRET,
                store=MemoryStore(),
                sweep_interval=None,
            )
        ],
    )
    made["lazysession (cookie, encrypted)"] = Starlette(
        routes=ROUTES,
        middleware=[Middleware(LazySessionMiddleware, secret_key=SECRET, encrypt=True)],
    )
    made["lazysession (MemoryStore, encrypted)"] = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                LazySessionMiddleware,
                secret_key=SECRET,
                store=MemoryStore(),
                sweep_interval=None,
                encrypt=True,
            )
        ],
    )
    return made


ENCRYPTED = " encrypted)"


def unencrypted(stack: str) -> str | None:
    """The stack an encrypted one is measured against: the same, without encryption."""
    if not stack.endswith(ENCRYPTED):
        return None
    return stack[: -len(ENCRYPTED)].rstrip(",") + ")"


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class Capture:
    def __init__(self) -> None:
        self.cookie: bytes | None = None

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            for name, value in message.get("headers", []):
                if name == b"set-cookie":
                    self.cookie = value.split(b";")[0]


async def _ignore(message: MutableMapping[str, Any]) -> None:
    return None


async def login_cookie(app: Starlette) -> list[tuple[bytes, bytes]]:
    capture = Capture()
    await app(scope("/write", []), receive, capture)
    return [(b"cookie", capture.cookie)] if capture.cookie else []


SCENARIOS: dict[str, Callable[[list[tuple[bytes, bytes]]], Scope]] = {
    "untouched, no cookie": lambda cookie: scope("/untouched", []),
    "untouched, Bearer": lambda cookie: scope(
        "/untouched", [(b"authorization", b"Bearer sdk-token")]
    ),
    "Bearer, handler writes": lambda cookie: scope(
        "/write", [(b"authorization", b"Bearer sdk-token")]
    ),
    "read, no cookie": lambda cookie: scope("/read", []),
    "read, valid cookie": lambda cookie: scope("/read", cookie),
    "write, valid cookie": lambda cookie: scope("/write", cookie),
}


async def time_calls(app: Starlette, template: Scope, calls: int) -> float:
    """Microseconds per call."""
    gc.collect()
    started = time.perf_counter()
    for _ in range(calls):
        await app(dict(template), receive, _ignore)
    return (time.perf_counter() - started) / calls * 1e6


async def cycles_per_request(app: Starlette, template: Scope, calls: int = 200) -> float:
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            await app(dict(template), receive, _ignore)
        return gc.collect() / calls
    finally:
        gc.enable()


def measured(apps: dict[str, Starlette], scenario: str) -> dict[str, Starlette]:
    return {name: app for name, app in apps.items() if measured_in(name, scenario)}


async def main(rounds: int, calls: int) -> None:
    apps = stacks()
    cookies = {
        name: [] if name in FLOORS else await login_cookie(app) for name, app in apps.items()
    }
    per_call: dict[tuple[str, str], list[float]] = {}
    to_bare: dict[tuple[str, str], list[float]] = {}
    to_starlette: dict[tuple[str, str], list[float]] = {}
    to_plain: dict[tuple[str, str], list[float]] = {}
    for scenario, make in SCENARIOS.items():  # warm up
        for name, app in measured(apps, scenario).items():
            await time_calls(app, make(cookies[name]), 200)
    for _ in range(rounds):
        for scenario, make in SCENARIOS.items():
            this_round = {
                name: await time_calls(app, make(cookies[name]), calls)
                for name, app in measured(apps, scenario).items()
            }
            for name, micros in this_round.items():
                key = (name, scenario)
                per_call.setdefault(key, []).append(micros)
                # Ratios are taken within a round, between neighbouring measurements, so
                # drift in the machine's speed cancels out.
                to_bare.setdefault(key, []).append(micros / this_round["bare app"])
                to_starlette.setdefault(key, []).append(
                    micros / this_round["starlette SessionMiddleware"]
                )
                plain = unencrypted(name)
                if plain is not None:
                    to_plain.setdefault(key, []).append(micros / this_round[plain])

    print(f"## Middleware cost per request, in-process ({machine_line()})\n")
    print(
        f"{rounds} interleaved rounds of {calls} calls per stack and scenario; medians "
        "(± half the spread between the quartiles), ratios taken within each round.\n"
    )
    rows = []
    for scenario in SCENARIOS:
        for name, app in measured(apps, scenario).items():
            key = (name, scenario)
            cycles = await cycles_per_request(app, SCENARIOS[scenario](cookies[name]))
            micros, _ = median_and_spread(per_call[key])
            bare, bare_spread = median_and_spread(to_bare[key])
            star, star_spread = median_and_spread(to_starlette[key])
            if key in to_plain:
                ratio, ratio_spread = median_and_spread(to_plain[key])
                x_plain = f"{ratio:.3f} ± {ratio_spread * ratio:.3f}"
            else:
                x_plain = "-"
            rows.append(
                [
                    scenario,
                    name,
                    f"{micros:.1f}",
                    f"{bare:.3f} ± {bare_spread * bare:.3f}",
                    f"{star:.3f} ± {star_spread * star:.3f}",
                    x_plain,
                    f"{cycles:.2f}",
                ]
            )
    print(
        markdown_table(
            [
                "scenario",
                "stack",
                "µs/call",
                "x bare",
                "x starlette",
                "x unencrypted",
                "gc objects/req",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.calls))
