"""The ``lazysession`` commands about an owner's sessions: ``sessions`` (a table),
``revoke`` (log out everywhere, or everywhere but ``--keep``) and ``erase`` (an erasure
request: every session, after a confirmation unless ``--yes``). Failures are
:class:`~lazysession.cli.Failure` lines, as for the other commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime, timezone

from ._cli_stores import Failure, HasTable, open_store, require_table
from ._cli_words import plural
from ._options import keeps_owners
from .stores import Store


def run_owner_command(args: argparse.Namespace) -> str:
    """Run ``sessions``, ``revoke`` or ``erase`` as parsed; the text to print."""
    url, owner, table, prefix = args.url, args.owner, args.table, args.prefix
    if args.command == "sessions":
        return "\n".join(asyncio.run(sessions(url, owner, table=table, prefix=prefix)))
    if args.command == "revoke":
        ended = asyncio.run(revoke(url, owner, keep=args.keep, table=table, prefix=prefix))
        return f"ended {plural(ended, 'session')} of {owner}"
    confirm = None if args.yes else ask
    ended = asyncio.run(erase(url, owner, confirm=confirm, table=table, prefix=prefix))
    return f"erased {plural(ended, 'session')} of {owner}"


def _owned_store(url: str, table: str | None, prefix: str | None) -> Store:
    store = open_store(url, table=table, prefix=prefix)
    if not keeps_owners(store):
        raise Failure(f"{type(store).__name__} keeps no index of owners")
    return store


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


async def sessions(
    url: str, owner: str, *, table: str | None = None, prefix: str | None = None
) -> list[str]:
    """The lines ``lazysession sessions`` prints: a table of the owner's live sessions."""
    store = _owned_store(url, table, prefix)
    try:
        if isinstance(store, HasTable):
            await require_table(store, url)
        infos = await store.sessions_of(owner)
    finally:
        await store.aclose()
    if not infos:
        return [f"{owner} has no live session"]
    rows = [("handle", "device", "created", "last seen", "expires")]
    rows += [
        (
            info.handle,
            info.device or "-",
            _when(info.created_at),
            _when(info.last_seen),
            _when(info.expires_at),
        )
        for info in infos
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return [*lines, f"{plural(len(infos), 'live session')} of {owner}"]


async def revoke(
    url: str,
    owner: str,
    *,
    keep: str | None = None,
    table: str | None = None,
    prefix: str | None = None,
) -> int:
    """Run ``lazysession revoke``: end the owner's sessions but ``keep``; how many."""
    store = _owned_store(url, table, prefix)
    try:
        if isinstance(store, HasTable):
            await require_table(store, url)
        return await store.revoke_all(owner, keep=keep)
    finally:
        await store.aclose()


def ask(question: str) -> bool:
    if not sys.stdin.isatty():
        raise Failure("erase asks for confirmation on a terminal; pass --yes to erase without")
    print(question + " [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


async def erase(
    url: str,
    owner: str,
    *,
    confirm: Callable[[str], bool] | None = None,
    table: str | None = None,
    prefix: str | None = None,
) -> int:
    """Run ``lazysession erase``: end every session of ``owner`` once ``confirm`` agrees
    (None: without asking); how many. An ended session keeps none of its data: what is
    left of its id for a minute is a marker that reads as logged out."""
    store = _owned_store(url, table, prefix)
    try:
        if isinstance(store, HasTable):
            await require_table(store, url)
        held = len(await store.sessions_of(owner))
        if confirm is not None and not confirm(
            f"end {plural(held, 'live session')} of {owner} and erase their data?"
        ):
            raise Failure("nothing erased")
        return await store.revoke_all(owner)
    finally:
        await store.aclose()
