#!/usr/bin/env python3
"""Run Starlette's and Flask's own session tests against lazysession, as a user would.

    python3 scripts/dev.py compat            # every suite on every store
    python3 scripts/dev.py compat --suite flask --store redis -v

The source distributions of the Starlette and Flask versions installed in ``.venv`` are
downloaded from PyPI at run time (``pip download --no-binary :all:``) into a cache
outside the repository (``$LAZYSESSION_COMPAT_CACHE``, default
``~/.cache/lazysession-compat``); their code is never committed. From them:

- Starlette's ``tests/middleware/test_session.py``, with its one import line swapped to
  ``from lazysession import Session, SessionMiddleware`` and nothing else changed, under
  Starlette's own ``conftest.py`` and pytest settings (warnings are errors);
- Flask's tests that touch sessions (``test_basic.py``'s session and flashing tests,
  ``test_reqctx.py``, ``test_testing.py``, and the session tests of ``test_helpers.py``,
  ``test_templating.py`` and ``test_signals.py``), unchanged, under Flask's settings.

Each suite runs first as shipped (the ``stock`` row: the framework's own sessions, to
tell failures of the environment from lazysession's), then once per store: the cookie
store, then ``store=`` set to ``MemoryStore``,
``SQLAlchemyStore`` on SQLite and ``RedisStore`` (``scripts/compat_plugin.py`` puts the
store into every ``SessionMiddleware`` and every Flask app, as a user's conftest would).
Starlette's test tools that ``.venv`` lacks (``httpx2``, ``blockbuster``) go into the
cache too.

Rules:
- A failure listed in ``KNOWN`` is a difference lazysession means to keep (each one is
  in ``docs/migration.md``) or one that waits for a named fix; any other failure, a
  suite that cannot run, or a missing server fails the run (exit status 1).
- A known failure that now passes is reported, so the list can shrink, but fails
  nothing.
- A test that fails in the ``stock`` row too is reported as failing without
  lazysession, and fails nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORES = ("cookie", "memory", "sqlite", "sqlite-threads", "redis")
ASYNC_ONLY = {"sqlite-threads"}
"""Stores that differ from another only on the event loop: not run on Flask."""
STOCK = "stock"
"""The framework's own session implementation, run first: a test that fails there fails
for reasons of its own (e.g. a newer Werkzeug), not lazysession's."""
SUITES = ("starlette", "flask")
TEST_TOOLS = ("httpx2", "blockbuster")
"""Starlette's own test tools (its ``dev`` group) that the tests import or use."""

STARLETTE_IMPORT = "from starlette.middleware.sessions import Session, SessionMiddleware\n"
LAZYSESSION_IMPORT = "from lazysession import Session, SessionMiddleware\n"

FLASK_FILES = (
    "test_basic.py",
    "test_reqctx.py",
    "test_testing.py",
    "test_helpers.py",
    "test_templating.py",
    "test_signals.py",
)


@dataclass(frozen=True)
class Known:
    """A failure lazysession expects: a difference it keeps on purpose (each one is in
    ``docs/migration.md``), or one that waits for a named fix."""

    suite: str
    stores: tuple[str, ...]
    test: str
    """A regular expression over the test id pytest prints (``module::name[params]``)."""
    message: str
    """A regular expression the failure's message must match too."""
    reason: str

    def covers(self, suite: str, store: str, test: str, message: str) -> bool:
        return (
            suite == self.suite
            and store in self.stores
            and re.search(self.test, test) is not None
            and re.search(self.message, message) is not None
        )


SERVER_STORES = ("memory", "sqlite", "redis")
KNOWN: tuple[Known, ...] = (
    Known(
        "flask",
        SERVER_STORES,
        r"^test_basic::test_session_cookie_setting$",
        r"",
        "on a server store, SESSION_REFRESH_EACH_REQUEST refreshes a permanent session at "
        "most once per touch_after (by default half) of PERMANENT_SESSION_LIFETIME, not on "
        "every request, so reads cost no store write each (docs/migration.md; "
        "touch_after=0 refreshes always)",
    ),
    Known(
        "starlette",
        ("sqlite",),
        r"\[asyncio",
        r"BlockingError: Blocking call to sqlite3\.",
        "a SQLite file is served on the event loop by design: each call waits there for a "
        "lock at most a few milliseconds, then moves to a worker thread; with inline=False "
        "(the sqlite-threads row) the suite passes (docs/migration.md)",
    ),
)

DESELECTED = {"redis": "trio"}
"""Parametrisations a store cannot run: redis-py's asyncio client needs asyncio."""


@dataclass
class Result:
    suite: str
    store: str
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    seconds: float = 0.0
    broken: str | None = None
    """Why the suite did not run at all (collection error, crash)."""

    def fails_in_stock(self, test: str, results: list[Result]) -> bool:
        """The same test fails with the framework's own sessions."""
        return self.store != STOCK and any(
            r.suite == self.suite and r.store == STOCK and test in r.failed for r in results
        )

    def reason(self, test: str) -> Known | None:
        message = self.messages.get(test, "")
        for known in KNOWN:
            if known.covers(self.suite, self.store, test, message):
                return known
        return None


def cache_dir() -> Path:
    configured = os.environ.get("LAZYSESSION_COMPAT_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lazysession-compat"


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(command, check=True)


def sdist(project: str, version: str, cache: Path) -> Path:
    """The project's source distribution, downloaded once into the cache."""
    folder = cache / "sdists"
    for found in folder.glob(f"{project}-{version}.tar.gz"):
        return found
    folder.mkdir(parents=True, exist_ok=True)
    print(f"downloading the {project} {version} sdist from PyPI ...", flush=True)
    pip("download", "--no-deps", "--no-binary", ":all:", "-d", str(folder), f"{project}=={version}")
    for found in folder.glob(f"{project}-{version}.tar.gz"):
        return found
    sys.exit(f"pip downloaded no {project}-{version}.tar.gz into {folder}")


def extract_tests(archive: Path, into: Path) -> Path:
    """The archive's ``tests/`` and ``pyproject.toml`` (never its package: the tests
    must import the installed one), in a fresh folder."""
    top = archive.name.removesuffix(".tar.gz")
    target = into / top
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            relative = member.name.removeprefix(top + "/")
            if relative == "pyproject.toml" or relative.startswith("tests/"):
                member.name = relative
                tar.extract(member, target, filter="data")
    return target


def test_tools(cache: Path) -> Path:
    """A folder with Starlette's test tools, appended to ``sys.path`` by the plugin (so
    the packages ``.venv`` already has keep their versions)."""
    key = hashlib.sha256(f"{sys.version}{TEST_TOOLS}".encode()).hexdigest()[:12]
    folder = cache / f"test-tools-{key}"
    if not (folder / ".complete").exists():
        print(f"installing Starlette's test tools ({', '.join(TEST_TOOLS)}) ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        pip("install", "--target", str(folder), *TEST_TOOLS)
        (folder / ".complete").touch()
    return folder


def prepare_starlette(cache: Path, work: Path) -> tuple[Path, Path]:
    """Two copies of the tests: as shipped (the stock row), and on lazysession."""
    version = importlib.metadata.version("starlette")
    archive = sdist("starlette", version, cache)
    stock = extract_tests(archive, work / STOCK)
    tree = extract_tests(archive, work)
    test_file = tree / "tests" / "middleware" / "test_session.py"
    source = test_file.read_text()
    if source.count(STARLETTE_IMPORT) != 1:
        sys.exit(f"{test_file}: Starlette's session import is not there once; update compat.py")
    test_file.write_text(source.replace(STARLETTE_IMPORT, LAZYSESSION_IMPORT))
    return stock, tree


def prepare_flask(cache: Path, work: Path) -> tuple[Path, Path]:
    """The tests, once: the plugin leaves Flask's own sessions in place for the stock row."""
    version = importlib.metadata.version("flask")
    tree = extract_tests(sdist("flask", version, cache), work)
    return tree, tree


def run_suite(suite: str, store: str, tree: Path, tools: Path, verbose: bool) -> Result:
    report = tree / f"report-{store}.xml"
    report.unlink(missing_ok=True)
    if suite == "starlette":
        targets = ["tests/middleware/test_session.py"]
    else:
        targets = [f"tests/{name}" for name in FLASK_FILES]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "scripts"),
        "LAZYSESSION_COMPAT_SUITE": suite,
        "LAZYSESSION_COMPAT_STORE": store,
        "LAZYSESSION_COMPAT_TOOLS": str(tools),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "compat_plugin",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit2",
        "-q" if not verbose else "-v",
        "--tb=short" if verbose else "--tb=no",
        *targets,
    ]
    if store in DESELECTED:
        command += ["-k", f"not {DESELECTED[store]}"]
    started = time.monotonic()
    completed = subprocess.run(
        command, cwd=tree, env=env, capture_output=not verbose, text=True, check=False
    )
    result = Result(suite, store, seconds=time.monotonic() - started)
    if not report.exists():
        result.broken = f"pytest exited {completed.returncode} without a report"
        if completed.stdout:
            result.broken += "\n" + completed.stdout[-3000:] + (completed.stderr or "")[-2000:]
        return result
    outcomes: dict[str, str] = {}  # a test failed in its call and at teardown is one failure
    # The report is the one pytest just wrote here, not untrusted input.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        name = case.get("name", "?")
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        test = f"{module}::{name}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            outcomes[test] = "failed"
            result.messages.setdefault(test, problem.get("message") or "")
        elif case.find("skipped") is not None:
            outcomes.setdefault(test, "skipped")
        else:
            outcomes.setdefault(test, "passed")
    result.failed = [test for test, outcome in outcomes.items() if outcome == "failed"]
    result.skipped = sum(1 for outcome in outcomes.values() if outcome == "skipped")
    result.passed = sum(1 for outcome in outcomes.values() if outcome == "passed")
    if completed.returncode not in (0, 1) and not result.failed:
        result.broken = f"pytest exited {completed.returncode}"
    return result


def classify(result: Result, results: list[Result]) -> dict[str, str]:
    """Each failed test of ``result``: ``stock`` (fails as shipped too), ``known`` or
    ``unexpected``."""
    kinds = {}
    for test in result.failed:
        if result.store == STOCK or result.fails_in_stock(test, results):
            kinds[test] = "stock"
        elif result.reason(test) is not None:
            kinds[test] = "known"
        else:
            kinds[test] = "unexpected"
    return kinds


def print_table(results: list[Result]) -> None:
    header = ("suite", "store", "passed", "failed", "fail as shipped", "known", "unexpected")
    rows = []
    for r in results:
        kinds = list(classify(r, results).values())
        rows.append(
            (
                r.suite,
                r.store,
                str(r.passed),
                str(len(r.failed)),
                str(kinds.count("stock")),
                "-" if r.store == STOCK else str(kinds.count("known")),
                "did not run"
                if r.broken
                else ("-" if r.store == STOCK else str(kinds.count("unexpected"))),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=SUITES, action="append", help="default: both")
    parser.add_argument("--store", choices=STORES, action="append", help="default: all")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = parser.parse_args(argv)
    suites = args.suite or list(SUITES)
    stores = args.store or list(STORES)
    cache = cache_dir()
    work = cache / "run"
    tools = test_tools(cache)
    prepare = {"starlette": prepare_starlette, "flask": prepare_flask}
    results = []
    for suite in suites:
        stock, tree = prepare[suite](cache, work)
        for store in [STOCK, *stores]:
            if suite == "flask" and store in ASYNC_ONLY:
                continue
            where = "as shipped" if store == STOCK else f"on the {store} store"
            print(f"running {suite}'s session tests {where} ...", flush=True)
            results.append(
                run_suite(suite, store, stock if store == STOCK else tree, tools, args.verbose)
            )
    print()
    print_table(results)
    status = 0
    counts = {"stock": 0, "known": 0, "unexpected": 0}
    for result in results:
        where = f"{result.suite} on {result.store}"
        if result.broken:
            print(f"\n{where} did not run: {result.broken}")
            status = 1
        for test, kind in classify(result, results).items():
            first_line = result.messages.get(test, "").strip().split("\n")[0][:300]
            if result.store != STOCK:
                counts[kind] += 1
            if kind == "stock" and result.store == STOCK:
                print(f"{where}: {test} fails without lazysession: {first_line}")
            elif kind == "known":
                reason = result.reason(test)
                assert reason is not None
                print(f"{where}: {test} fails as known: {reason.reason}")
            elif kind == "unexpected":
                print(f"{where}: {test} FAILED: {first_line}")
                status = 1
    for entry in KNOWN:
        ran = [r for r in results if r.suite == entry.suite and r.store in entry.stores]
        if ran and not any(r.reason(test) is entry for r in ran for test in r.failed):
            print(f"known failure no longer seen ({entry.suite} {entry.test}): update KNOWN")
    passed = sum(r.passed for r in results if r.store != STOCK)
    print(
        f"\nfailing as shipped too: {counts['stock']}; known differences: {counts['known']} "
        "(each named above)"
    )
    print(f"compat: {passed} passed, {counts['unexpected']} failed")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
