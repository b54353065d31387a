"""``lazysession``: look after a session store from the command line.

    lazysession stats URL                  sessions held, expired backlog, oldest, size
    lazysession sweep URL [--dry-run] [--batch-size N]
                                           purge expired sessions, with progress
    lazysession ddl URL                    print the table's CREATE statements

URL is the store URL the app uses (``postgresql+asyncpg://...``, ``sqlite+aiosqlite:///...``,
``redis://...``). Each command exits non-zero with one line on a bad URL or a store that
cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from ._errors import LazySessionError
from .config import store_from_url
from .stores import MemoryStore, Store


def _kind(store: Store) -> str:
    """The store's class name: tells SQL from Redis without importing either driver."""
    return type(store).__name__


def _server_side(url: str, **options: object) -> Store:
    store = store_from_url(url, **options)
    if store.client_side or isinstance(store, MemoryStore):
        raise LazySessionError(f"{url} lives inside the app (cookie or memory): nothing to inspect")
    return store


def _human(size: int | None) -> str:
    if size is None:
        return "n/a"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{size:,} B"
        value /= 1024
    return f"{size:,} B"  # pragma: no cover


async def stats(url: str) -> list[str]:
    store = _server_side(url)
    try:
        lines = [f"store: {type(store).__name__}", f"sessions held: {await store.count():,}"]
        if _kind(store) == "SQLAlchemyStore":
            from .stores import SQLAlchemyStore

            assert isinstance(store, SQLAlchemyStore)
            oldest = await store.oldest_created()
            age = (
                "n/a" if oldest is None else str(datetime.now(timezone.utc) - oldest).split(".")[0]
            )
            lines += [
                f"expired, awaiting the sweep: {await store.count_expired():,}",
                f"oldest live session: {age} old",
                f"table and indexes: {_human(await store.table_bytes())}",
            ]
        elif _kind(store) == "RedisStore":
            lines.append("expired, awaiting the sweep: 0 (Redis expires keys itself)")
        return lines
    finally:
        await store.aclose()


async def sweep(url: str, dry_run: bool, batch_size: int | None) -> str:
    options = {"batch_size": batch_size} if batch_size else {}
    store = _server_side(url, **options)
    try:
        if _kind(store) != "SQLAlchemyStore":
            return "nothing to sweep: this store expires sessions itself"
        from .stores import SQLAlchemyStore

        assert isinstance(store, SQLAlchemyStore)
        backlog = await store.count_expired()
        if dry_run:
            return f"would delete {backlog:,} expired sessions"

        def progress(done: int) -> None:
            share = f" ({done / backlog:.0%})" if backlog else ""
            print(f"\rdeleted {done:,} of {backlog:,}{share}", end="", file=sys.stderr, flush=True)

        deleted = await store.sweep(on_batch=progress, full_speed=True)
        print(file=sys.stderr)
        return f"deleted {deleted:,} expired sessions"
    finally:
        await store.aclose()


def ddl(url: str) -> str:
    store = store_from_url(url)
    if _kind(store) != "SQLAlchemyStore":
        raise LazySessionError(f"{url} is not a SQL store: it has no table")
    from .stores import SQLAlchemyStore

    assert isinstance(store, SQLAlchemyStore)
    return store.ddl()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lazysession", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="what the store holds").add_argument("url")
    sweeper = commands.add_parser("sweep", help="delete expired sessions now")
    sweeper.add_argument("url")
    sweeper.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    sweeper.add_argument("--batch-size", type=int, default=None, help="rows a transaction")
    commands.add_parser("ddl", help="print the CREATE TABLE and CREATE INDEX").add_argument("url")
    args = parser.parse_args(argv)
    try:
        if args.command == "stats":
            print("\n".join(asyncio.run(stats(args.url))))
        elif args.command == "sweep":
            print(asyncio.run(sweep(args.url, args.dry_run, args.batch_size)))
        else:
            print(ddl(args.url), end="")
    except LazySessionError as error:
        print(f"lazysession: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"lazysession: cannot reach the store: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
