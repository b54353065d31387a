#!/usr/bin/env python3
"""What hostile cookies cost a worker: time per request and resident memory.

Two tables, through the ASGI middleware called in-process (no server), for a server-side
store (MemoryStore) and for the cookie store:

- *Many same-name cookies*: a ``Cookie`` header of about 1 MB made of forged values of
  the session cookie's name, each shaped like a real one, against the same number of
  bytes sent as one value, and as the most cookies of another name that fit (the parser's
  worst case). The median milliseconds per request over ``--rounds``.
- *Padded copies of one valid cookie*: ``--copies`` distinct copies of a valid cookie,
  each padded to ``--pad-kb`` KB with junk a lenient decoder would skip, sent one per
  request; the process's resident memory (VmRSS) before and after, and whether the
  padded copies loaded the session. Each store runs in a fresh process.

    python benchmarks/hostile.py [--rounds 15] [--copies 3000] [--pad-kb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from benchmarks._table import machine_line, markdown_table
from lazysession import MemoryStore, SessionMiddleware

SECRET = "benchmark-secret-" + "x" * 20
HEADER_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """``/write`` logs a user in; any other path answers with what the session held."""
    if scope["path"] == "/write":
        scope["session"]["user"] = "ada"
    body = json.dumps(dict(scope["session"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def middleware(kind: str) -> SessionMiddleware:
    store = MemoryStore() if kind == "MemoryStore" else None
    return SessionMiddleware(app, secret_key=SECRET, store=store, sweep_interval=None)


async def call(
    asgi: Any, cookie: bytes | None, path: str = "/read"
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    headers = [(b"host", b"bench")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi(scope, receive, send)
    return sent[1]["body"], sent[0]["headers"]


async def valid_cookie(kind: str) -> tuple[SessionMiddleware, str]:
    """A middleware of ``kind`` and the cookie value it set for a session of its own."""
    asgi = middleware(kind)
    _, headers = await call(asgi, None, "/write")
    set_cookie = dict(headers)[b"set-cookie"].decode()
    return asgi, set_cookie.split(";")[0].split("=", 1)[1]


def forged_like(value: str, n: int) -> str:
    """``value`` with its last signature characters replaced: the same shape, a wrong HMAC."""
    tail = f"{n:06d}".translate(str.maketrans("0123456789", "ABCDEFGHIJ"))
    return value[: -len(tail) - 1] + tail + "A"


async def time_headers(rounds: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for kind in ("MemoryStore", "cookie store"):
        asgi, value = await valid_cookie(kind)
        one = f"session={value}"
        count = HEADER_BYTES // (len(one) + 2)
        many = "; ".join(f"session={forged_like(value, n)}" for n in range(count)).encode()
        single = ("session=" + "A" * (len(many) - len("session="))).encode()
        tiny = b"a;" * ((len(many) - len(one)) // 2) + f"session={forged_like(value, 0)}".encode()
        cases = {
            "forged same-name values": many,
            "the same bytes as one value": single,
            "2-byte cookies of another name, then one forged": tiny,
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, header in cases.items():
                gc.collect()
                started = time.perf_counter()
                body, _ = await call(asgi, header)
                samples[name].append((time.perf_counter() - started) * 1000)
                assert body == b"{}", "a forged header loaded a session"
        for name, header in cases.items():
            values = header.count(b"session=")
            rows.append(
                [
                    kind,
                    name,
                    f"{len(header):,}",
                    f"{values:,}",
                    f"{statistics.median(samples[name]):.2f}",
                ]
            )
    return rows


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def padded_copies(kind: str, copies: int, pad_kb: int) -> dict[str, object]:
    asgi, value = await valid_cookie(kind)
    body, _ = await call(asgi, f"session={value}".encode())
    assert body != b"{}", "the valid cookie did not load its session"
    gc.collect()
    before = rss_kb()
    loaded = 0
    pad = pad_kb * 1024 - len(value)
    for n in range(copies):
        junk = b"!" * (n + 1) + b"\xe9" * (pad - n - 1)  # distinct, none a base64 character
        body, _ = await call(asgi, b"session=" + value.encode() + junk)
        loaded += body != b"{}"
    gc.collect()
    after = rss_kb()
    return {"before": before, "after": after, "loaded": loaded}


def rss_rows(copies: int, pad_kb: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for kind in ("MemoryStore", "cookie store"):
        arguments = ["--child", kind, "--copies", str(copies), "--pad-kb", str(pad_kb)]
        child = subprocess.run(
            [sys.executable, __file__, *arguments],
            capture_output=True,
            text=True,
            check=True,
        )
        found = json.loads(child.stdout)
        before, after = found["before"] / 1024, found["after"] / 1024
        rows.append(
            [
                kind,
                f"{copies:,} x {pad_kb} KB",
                f"{before:.1f}",
                f"{after:.1f}",
                f"{after - before:+.1f}",
                f"{found['loaded']:,}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--copies", type=int, default=3000)
    parser.add_argument("--pad-kb", type=int, default=100)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(padded_copies(args.child, args.copies, args.pad_kb))))
        return
    print(f"Hostile cookies, in-process ASGI ({machine_line()})\n")
    print(
        markdown_table(
            ["store", "Cookie header", "bytes", "session values", "ms per request (median)"],
            asyncio.run(time_headers(args.rounds)),
        )
    )
    print()
    print(
        markdown_table(
            ["store", "padded copies", "RSS MB before", "RSS MB after", "growth MB", "loaded"],
            rss_rows(args.copies, args.pad_kb),
        )
    )


if __name__ == "__main__":
    main()
