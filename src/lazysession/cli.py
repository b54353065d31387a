"""``lazysession``: look at a session store from the command line, and purge its backlog.

    lazysession stats URL [--table NAME | --prefix PREFIX]
    lazysession sweep URL [--dry-run] [--batch-size N] [--table NAME]
    lazysession ddl URL [--table NAME]
    lazysession sessions URL --owner OWNER          (the owner's live sessions, a table)
    lazysession revoke URL --owner OWNER [--keep HANDLE]
    lazysession erase URL --owner OWNER [--yes]     (an erasure request: every session)
    lazysession --version                 (``python -m lazysession`` works the same)

URL is the store URL the app uses, ASGI or WSGI: ``sqlite:///...``,
``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``, ``postgresql+psycopg://...``,
``mysql+asyncmy://...``, ``mysql+aiomysql://...``, ``mysql+pymysql://...``, ``redis://...``.

Rules:
- It only looks: ``stats``, ``sweep`` and ``sessions`` never create a database file, a
  table or a key. A database file that is not there, or a database without the sessions
  table, is an error naming what is missing (``sweep`` deletes expired sessions, nothing
  else). ``revoke`` and ``erase`` end an owner's sessions and nothing else; ``erase``
  asks first, unless ``--yes``.
- What to report is asked of the store (its capabilities: ``in_process``,
  ``expires_by_itself``, the methods it has), never read off its class name.
- Every failure is one line on stderr and exit status 1 (2 for a command line it cannot
  parse, 130 when interrupted). A password in a URL is never printed.
- Progress goes to stderr: a bar redrawn in place on a terminal, and otherwise a plain
  line each time another tenth of the backlog is gone (``_cli_words``, with the words).
- A store is opened as ``_cli_stores`` says: a sync URL through its driver family's
  async twin, with no other driver to install.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn, TextIO

from ._cli_stores import SQL_FAMILIES, Failure, HasTable, ReportsBacklog, require_table
from ._cli_stores import open_store as open_store
from ._cli_words import Progress as Progress
from ._cli_words import _one_line
from ._cli_words import age as age
from ._cli_words import human_bytes as human_bytes
from ._cli_words import plural as plural
from ._errors import LazySessionError
from ._store_urls import _redacted, check_store_url, missing_module, store_from_url
from .stores import Store

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# -- the commands -------------------------------------------------------------------------


def _describe(store: Store) -> str:
    kind = type(store).__name__
    if isinstance(store, HasTable):
        return f"store: {kind}, table {store.table.name}"
    prefix = getattr(store, "prefix", None)
    return f"store: {kind}, prefix {prefix}" if prefix else f"store: {kind}"


async def stats(url: str, *, table: str | None = None, prefix: str | None = None) -> list[str]:
    """The lines ``lazysession stats`` prints."""
    store = open_store(url, table=table, prefix=prefix)
    try:
        if isinstance(store, HasTable):
            await require_table(store, url)
        lines = [_describe(store), f"sessions held: {await store.count():,}"]
        if isinstance(store, ReportsBacklog):
            oldest = await store.oldest_created()
            size = await store.table_bytes()
            lines += [
                f"expired, awaiting the sweep: {await store.count_expired():,}",
                "oldest live session: "
                + ("none" if oldest is None else f"{age(oldest, datetime.now(timezone.utc))} old"),
                "table and indexes: "
                + ("not reported by this database" if size is None else human_bytes(size)),
            ]
        elif store.expires_by_itself:
            lines.append("expired, awaiting the sweep: none (the store expires sessions itself)")
        return lines
    finally:
        await store.aclose()


async def sweep(
    url: str,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    table: str | None = None,
    progress_to: TextIO | None = None,
) -> str:
    """Run ``lazysession sweep``; returns the closing line."""
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    probe = check_store_url(url).split("://", 1)[0].lower()
    if probe.split("+")[0] not in SQL_FAMILIES:
        options = {}
    store = open_store(url, table=table, prefix=None, **options)
    try:
        if not isinstance(store, ReportsBacklog):
            if store.expires_by_itself:
                return "nothing to sweep: the store expires sessions itself"
            raise Failure(f"{type(store).__name__} cannot report a backlog to sweep")
        if isinstance(store, HasTable):
            await require_table(store, url)
        backlog = await store.count_expired()
        if dry_run:
            return f"would delete {plural(backlog, 'expired session')}"
        if backlog == 0:
            return "nothing to sweep: no expired sessions"
        progress = Progress(backlog, progress_to or sys.stderr)
        started = time.perf_counter()
        try:
            deleted = await store.sweep(on_batch=progress, full_speed=True)
        except BaseException:
            progress.close()
            raise
        progress.close()
        took = time.perf_counter() - started
        return f"deleted {plural(deleted, 'expired session')} in {took:.1f} s"
    finally:
        await store.aclose()


def ddl(url: str, *, table: str | None = None) -> str:
    """The ``CREATE`` statements for the table ``url``'s store would use."""
    scheme = check_store_url(url).split("://", 1)[0].lower()
    if scheme.split("+")[0] not in SQL_FAMILIES:
        raise Failure(f"{_redacted(url)} is not a SQL store: it has no table")
    store = store_from_url(url, **({} if table is None else {"table_name": table}))
    assert isinstance(store, HasTable)
    return store.ddl()


# -- the command line ---------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lazysession")
    except Exception:  # pragma: no cover - running from a source tree without metadata
        from . import __version__

        return __version__


def parser() -> argparse.ArgumentParser:
    """The ``lazysession`` command line."""
    top = _Parser(
        prog="lazysession",
        description="Look at a lazysession store and purge its expired sessions.",
        epilog="URL is the store URL the app uses, e.g. postgresql+asyncpg://app@db/app, "
        "sqlite:///sessions.db or redis://localhost:6379/0.",
    )
    top.add_argument("--version", action="version", version=f"lazysession {_version()}")
    commands = top.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="stats, sweep, ddl, sessions, revoke or erase",
    )

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("url", metavar="URL", help="the store URL the app uses")
        return sub

    table_help = "the sessions table, if not lazysession_sessions"
    shown = command("stats", "Sessions held, the expired backlog, the oldest session, the size.")
    shown.add_argument("--table", metavar="NAME", help=table_help)
    shown.add_argument(
        "--prefix", metavar="PREFIX", help="the Redis key prefix, if not lazysession:"
    )
    swept = command("sweep", "Delete expired sessions now, in batches, with progress on stderr.")
    swept.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    swept.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="N",
        help="rows deleted per transaction (default 1000)",
    )
    swept.add_argument("--table", metavar="NAME", help=table_help)
    made = command("ddl", "Print the CREATE TABLE and CREATE INDEX statements; connect nowhere.")
    made.add_argument("--table", metavar="NAME", help=table_help)
    prefix_help = "the Redis key prefix, if not lazysession:"
    owner_help = "the owner, as the app named it at login (regenerate(owner=...))"
    listed = command("sessions", "List an owner's live sessions: handle, device, times.")
    revoked = command("revoke", "End an owner's sessions (all but --keep): log out everywhere.")
    revoked.add_argument(
        "--keep", metavar="HANDLE", type=_handle, help="the handle of a session to leave alone"
    )
    erased = command("erase", "End every session of an owner, for an erasure request.")
    erased.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for sub in (listed, revoked, erased):
        sub.add_argument("--owner", required=True, metavar="OWNER", help=owner_help)
        sub.add_argument("--table", metavar="NAME", help=table_help)
        sub.add_argument("--prefix", metavar="PREFIX", help=prefix_help)
    return top


def _handle(text: str) -> str:
    from ._identity import HANDLE_LENGTH, is_handle

    if not is_handle(text):
        raise argparse.ArgumentTypeError(
            f"expected a session handle ({HANDLE_LENGTH} characters a-z and 2-7), not {text!r}"
        )
    return text


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    print(f"lazysession: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    url: str = args.url
    try:
        if args.command == "stats":
            print("\n".join(asyncio.run(stats(url, table=args.table, prefix=args.prefix))))
        elif args.command == "sweep":
            line = asyncio.run(
                sweep(url, dry_run=args.dry_run, batch_size=args.batch_size, table=args.table)
            )
            print(line)
        elif args.command == "ddl":
            print(ddl(url, table=args.table), end="")
        elif args.command in ("sessions", "revoke", "erase"):
            from ._cli_owners import run_owner_command

            print(run_owner_command(args))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Failure as failure:
        return _fail(str(failure))
    except ImportError as error:
        return _fail(missing_module(error, _redacted(url)))
    except LazySessionError as error:
        message = _one_line(error)
        if "DB index is out of range" in message:
            message = "the Redis server has no database of that number (DB index is out of range)"
        return _fail(message if _redacted(url) in message else f"{_redacted(url)}: {message}")
    except OSError as error:
        return _fail(f"cannot reach {_redacted(url)}: {_one_line(error)}")
    except Exception as error:
        return _fail(f"{_redacted(url)}: {type(error).__name__}: {_one_line(error)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
