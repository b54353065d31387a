"""The owner index of RedisStore: a login's cost with and without an owner, sessions_of for
an owner with 1,000 sessions, revoke_all of 10,000; on both sides, printed as a table.

Run: ``.venv/bin/python benchmarks/owners_redis.py`` (``LAZYSESSION_BENCH_REDIS`` names the
server; ``LAZYSESSION_BENCH_REDIS_CLUSTER`` a cluster node's URL, to measure a cluster too).
Each store works under a prefix of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks, a package

from benchmarks._table import machine_line, markdown_table, median_and_spread
from lazysession._expiry import META_KEY, utc_now
from lazysession.stores import RedisStore

REDIS = os.environ.get("LAZYSESSION_BENCH_REDIS", "redis://127.0.0.1:6379/0")
CLUSTER = os.environ.get("LAZYSESSION_BENCH_REDIS_CLUSTER")
HOUR = timedelta(hours=1)


def session(owner: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"c": int(time.time())}
    if owner is not None:
        meta.update(u=owner, a=time.time(), d="Firefox on Linux")
    return {"user": owner, "cart": [1, 2, 3], META_KEY: meta}


def new_id() -> str:
    return secrets.token_hex(32)


def ms(samples: list[float]) -> str:
    middle, spread = median_and_spread(samples)
    return f"{middle * 1000:.2f} ms ±{spread:.0%}"


def fill(store: RedisStore, owner: str, n: int) -> None:
    """``n`` sessions of ``owner``, saved from threads (the sync side) to go quickly."""
    from concurrent.futures import ThreadPoolExecutor

    expires = utc_now() + HOUR
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda _: store.sync.save(new_id(), session(owner), expires_at=expires), range(n)
            )
        )


def timed(work: Callable[[], Any], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return samples


def measure(name: str, url: str, cluster: bool, args: argparse.Namespace) -> list[list[object]]:
    prefix = f"lazysession-bench:{uuid.uuid4().hex[:8]}:"
    store = RedisStore(url, prefix=prefix, cluster=cluster)
    loop = asyncio.new_event_loop()
    rows: list[list[object]] = []
    try:
        expires = utc_now() + HOUR
        for side in ("async", "sync"):

            def save(owner: str | None, side: str = side) -> None:
                if side == "sync":
                    store.sync.save(new_id(), session(owner), expires_at=expires)
                else:
                    loop.run_until_complete(
                        store.save(new_id(), session(owner), expires_at=expires)
                    )

            save(None)  # connections made, scripts cached
            save("warm-up")
            anonymous: list[float] = []
            owned: list[float] = []
            for n in range(args.logins):  # interleaved, so drift hits both alike
                owner = f"login-{n % 50}"
                owned.extend(timed(lambda owner=owner: save(owner), 1))  # type: ignore[misc]
                anonymous.extend(timed(lambda: save(None), 1))
            rows.append([name, side, "login (save), anonymous", ms(anonymous)])
            rows.append([name, side, "login (save), with an owner", ms(owned)])
            extra = median_and_spread(owned)[0] - median_and_spread(anonymous)[0]
            rows.append([name, side, "the owner's extra round trip", f"{extra * 1000:.2f} ms"])

        fill(store, "thousand", 1000)
        for side in ("async", "sync"):
            if side == "sync":
                listing = timed(lambda: store.sync.sessions_of("thousand"), args.rounds)
            else:
                listing = timed(
                    lambda: loop.run_until_complete(store.sessions_of("thousand")), args.rounds
                )
            rows.append([name, side, "sessions_of, 1,000 sessions", ms(listing)])
        assert len(store.sync.sessions_of("thousand")) == 1000

        for side in ("async", "sync"):
            revokes = []
            for round_ in range(args.revoke_rounds):
                owner = f"many-{side}-{round_}"
                fill(store, owner, 10_000)
                start = time.perf_counter()
                if side == "sync":
                    ended = store.sync.revoke_all(owner)
                else:
                    ended = loop.run_until_complete(store.revoke_all(owner))
                revokes.append(time.perf_counter() - start)
                assert ended == 10_000, ended
            rows.append([name, side, "revoke_all, 10,000 sessions", ms(revokes)])
    finally:
        client = store.check_sync()
        for key in list(client.scan_iter(match=prefix + "*", count=1000)):
            client.delete(key)
        loop.run_until_complete(store.aclose())
        store.sync.close()
        loop.close()
    return rows


def main(args: argparse.Namespace) -> None:
    rows = measure("Redis", REDIS, False, args)
    if CLUSTER:
        rows += measure("Redis Cluster", CLUSTER, True, args)
    else:
        print("LAZYSESSION_BENCH_REDIS_CLUSTER not set: the cluster is left out", file=sys.stderr)
    print(machine_line())
    print(markdown_table(["store", "side", "what", "median"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=300, help="logins timed of each kind")
    parser.add_argument("--rounds", type=int, default=30, help="sessions_of calls timed")
    parser.add_argument("--revoke-rounds", type=int, default=3, help="revoke_all calls timed")
    main(parser.parse_args())
