"""The operators' command: it only looks, takes the URLs ASGI and WSGI apps use, and
says every failure in one line on stderr."""

from __future__ import annotations

import argparse
import os
import pty
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

import lazysession
from lazysession.cli import main, parser
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.conftest import require_server
from tests.stores.backends import MYSQL, POSTGRES, REDIS, server_reachable, with_driver


def backlog(url: str, expired: int, live: int, table: str = "lazysession_sessions") -> None:
    """Fill the store at ``url`` (a sync URL) with expired and live sessions."""
    store = SQLAlchemyStore(url, table_name=table)
    store.sync.count()  # creates the table, as the app does on first use
    now = datetime.now(timezone.utc)
    for i in range(expired):
        store.sync.save(f"{i:064d}", {"i": i}, expires_at=now - timedelta(seconds=1))
    for i in range(live):
        store.sync.save(f"{i + expired:064d}", {"i": i}, expires_at=now + timedelta(hours=1))
    store.sync.close()


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


def filled(path: Path, expired: int, live: int) -> str:
    backlog(f"sqlite:///{path}", expired, live)
    return f"sqlite+aiosqlite:///{path}"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "lazysession", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_failure(capsys: pytest.CaptureFixture[str], status: int, expected: str) -> str:
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("lazysession: "), err
    assert err.count("\n") == 1, err
    assert expected in err, err
    assert "ASGI middleware" not in err
    assert "Background on this error" not in err
    return err


# -- what it reports ------------------------------------------------------------------------


def test_stats_reports_held_and_expired(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = filled(sqlite_file, expired=7, live=3)
    assert main(["stats", url]) == 0
    out = capsys.readouterr().out
    assert "store: SQLAlchemyStore, table lazysession_sessions" in out
    assert "sessions held: 10" in out
    assert "expired, awaiting the sweep: 7" in out
    assert "oldest live session: 0:00:" in out
    assert "table and indexes:" in out


def test_an_empty_table_has_no_oldest_session(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = filled(sqlite_file, expired=0, live=0)
    assert main(["stats", url]) == 0
    out = capsys.readouterr().out
    assert "oldest live session: none\n" in out
    assert "n/a" not in out


def test_stats_reads_the_sync_url_a_wsgi_app_uses(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filled(sqlite_file, expired=1, live=2)
    assert main(["stats", f"sqlite:///{sqlite_file}"]) == 0
    assert "sessions held: 3" in capsys.readouterr().out


def test_stats_reads_a_table_of_another_name(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backlog(f"sqlite:///{sqlite_file}", expired=0, live=4, table="app_sessions")
    assert main(["stats", f"sqlite:///{sqlite_file}", "--table", "app_sessions"]) == 0
    out = capsys.readouterr().out
    assert "table app_sessions" in out
    assert "sessions held: 4" in out


# -- it only looks ---------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+aiosqlite"])
@pytest.mark.parametrize("command", ["stats", "sweep"])
def test_a_wrong_path_is_an_error_and_creates_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], driver: str, command: str
) -> None:
    typo = tmp_path / "typo.db"
    status = main([command, f"{driver}:///{typo}"])
    one_line_failure(capsys, status, f"no database file at {typo}")
    assert not typo.exists()


@pytest.mark.parametrize("command", ["stats", "sweep"])
def test_a_database_without_the_table_is_an_error_and_gets_no_table(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    sqlite3.connect(sqlite_file).close()
    status = main([command, f"sqlite:///{sqlite_file}"])
    one_line_failure(capsys, status, "has no table lazysession_sessions")
    with sqlite3.connect(sqlite_file) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []


def test_a_dry_run_deletes_nothing(sqlite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = filled(sqlite_file, expired=5, live=2)
    assert main(["sweep", url, "--dry-run"]) == 0
    assert capsys.readouterr().out == "would delete 5 expired sessions\n"
    assert main(["stats", url]) == 0
    assert "sessions held: 7" in capsys.readouterr().out


# -- sweeping ---------------------------------------------------------------------------------


def test_piped_the_sweep_prints_a_line_per_tenth(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = filled(sqlite_file, expired=25, live=4)
    assert main(["sweep", url, "--batch-size", "10"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("deleted 25 expired sessions in ")
    assert captured.err.splitlines() == [
        "deleted 10 of 25 (40%)",
        "deleted 20 of 25 (80%)",
        "deleted 25 of 25 (100%)",
    ]
    main(["stats", url])
    assert "sessions held: 4" in capsys.readouterr().out


def test_on_a_terminal_the_sweep_draws_a_progress_bar(sqlite_file: Path) -> None:
    url = filled(sqlite_file, expired=30, live=0)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "lazysession", "sweep", url, "--batch-size", "10"],
            stderr=terminal,
            stdout=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert process.returncode == 0
    frames = [frame.strip() for frame in drawn.decode().split("\r") if frame.strip()]
    assert "[##########--------------------]  33%  10 of 30 deleted" in frames
    assert frames[-1] == "[##############################] 100%  30 of 30 deleted"


def test_one_expired_session_is_one_session(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = filled(sqlite_file, expired=1, live=0)
    assert main(["sweep", url, "--dry-run"]) == 0
    assert capsys.readouterr().out == "would delete 1 expired session\n"
    assert main(["sweep", url]) == 0
    assert capsys.readouterr().out.startswith("deleted 1 expired session in ")


@pytest.mark.parametrize("size", ["0", "-5", "many"])
def test_a_batch_size_below_one_is_refused(sqlite_file: Path, size: str) -> None:
    url = filled(sqlite_file, expired=1, live=0)
    result = run("sweep", url, "--batch-size", size)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"argument --batch-size: expected a whole number of at least 1, not '{size}'" in (
        result.stderr
    )


def test_ddl_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ddl", "postgresql+asyncpg://u@h/db", "--table", "app_sessions"]) == 0
    assert "CREATE TABLE app_sessions" in capsys.readouterr().out


# -- failures, in one line ---------------------------------------------------------------------


def test_a_bad_url_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_failure(capsys, main(["stats", "ftp://nowhere"]), "cannot tell which store")


def test_a_driver_lazysession_does_not_read_is_one_line_naming_the_ones_it_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["stats", "mysql://root@127.0.0.1/test"])
    one_line_failure(capsys, status, "use mysql+pymysql://, mysql+aiomysql://, mysql+asyncmy://")


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [
        ("asyncpg", "postgresql+asyncpg://postgres@127.0.0.1/test", "postgresql"),
        ("sqlalchemy", "sqlite:///x.db", "sqlalchemy"),
        ("redis", "redis://127.0.0.1:6379/0", "redis"),
    ],
)
def test_a_driver_that_is_not_installed_is_one_line_naming_the_extra(
    tmp_path: Path, module: str, url: str, extra: str
) -> None:
    (tmp_path / "x.db").touch()
    hide = f"import sys; sys.modules[{module!r}] = None; from lazysession.cli import main; "
    result = subprocess.run(
        [sys.executable, "-c", hide + f"sys.exit(main(['stats', {url!r}]))"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"pip install 'lazysession[{extra}]'" in result.stderr


def test_an_unreachable_store_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status = main(["stats", f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{port}/x"])
    err = one_line_failure(capsys, status, f"127.0.0.1:{port}")
    assert "hunter2" not in err


def test_a_store_inside_the_app_has_nothing_to_inspect(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_failure(capsys, main(["stats", "memory://"]), "nothing to inspect")


def test_table_and_prefix_belong_to_their_stores(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_failure(capsys, main(["stats", "redis://h/0", "--table", "t"]), "takes --prefix")
    one_line_failure(capsys, main(["stats", "sqlite:///x.db", "--prefix", "p"]), "takes --table")


# -- the command line itself ---------------------------------------------------------------------


def test_version_and_python_dash_m(tmp_path: Path) -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"lazysession {lazysession.__version__}\n"
    assert shutil.which("lazysession", path=str(Path(sys.executable).parent))


def test_every_argument_has_help() -> None:
    def actions(command: argparse.ArgumentParser) -> Iterator[argparse.Action]:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from actions(sub)
            yield action

    undocumented = [a.dest for a in actions(parser()) if not a.help]
    assert undocumented == []


def test_a_usage_error_is_one_line() -> None:
    result = run("stats")
    assert result.returncode == 2
    assert result.stderr == (
        "lazysession stats: the following arguments are required: URL "
        "(see lazysession stats --help)\n"
    )


# -- the servers: PostgreSQL and MariaDB through their sync drivers, Redis -------------------------


@pytest.fixture
def table_name() -> str:
    return f"cli_{uuid.uuid4().hex[:10]}"


def server_url(base: str, driver: str) -> str:
    if not server_reachable(base):
        require_server(f"no server at {base}")
    return with_driver(base, driver)


def drop(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


@pytest.mark.server
@pytest.mark.parametrize(
    ("base", "driver"),
    [(POSTGRES, "postgresql+psycopg"), (MYSQL, "mysql+pymysql")],
    ids=["postgresql+psycopg", "mysql+pymysql"],
)
def test_stats_and_sweep_through_a_sync_driver(
    capsys: pytest.CaptureFixture[str], table_name: str, base: str, driver: str
) -> None:
    url = server_url(base, driver)
    backlog(url, expired=3, live=2, table=table_name)
    try:
        assert main(["stats", url, "--table", table_name]) == 0
        out = capsys.readouterr().out
        assert "sessions held: 5" in out
        assert "expired, awaiting the sweep: 3" in out
        assert main(["sweep", url, "--table", table_name]) == 0
        assert capsys.readouterr().out.startswith("deleted 3 expired sessions in ")
    finally:
        drop(url, table_name)


@pytest.mark.server
def test_a_missing_table_on_postgresql_is_named_and_not_created(
    capsys: pytest.CaptureFixture[str], table_name: str
) -> None:
    url = server_url(POSTGRES, "postgresql+asyncpg")
    one_line_failure(capsys, main(["stats", url, "--table", table_name]), f"no table {table_name}")
    engine = sa.create_engine(with_driver(POSTGRES, "postgresql+psycopg"))
    try:
        assert not sa.inspect(engine).has_table(table_name)
    finally:
        engine.dispose()


@pytest.mark.server
def test_a_database_that_does_not_exist_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = server_url(POSTGRES, "postgresql+asyncpg").rsplit("/", 1)[0] + "/no_such_database"
    one_line_failure(capsys, main(["stats", url]), 'database "no_such_database" does not exist')


@pytest.mark.server
def test_stats_counts_a_redis_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    prefix = f"cli-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(REDIS, prefix=prefix)
    expires = datetime.now(timezone.utc) + timedelta(minutes=1)
    for i in range(3):
        store.sync.save(f"{i:064d}", {"i": i}, expires_at=expires)
    try:
        assert main(["stats", REDIS, "--prefix", prefix]) == 0
        out = capsys.readouterr().out
        assert f"prefix {prefix}" in out
        assert "sessions held: 3" in out
        assert main(["sweep", REDIS]) == 0
        assert capsys.readouterr().out == "nothing to sweep: the store expires sessions itself\n"
    finally:
        for i in range(3):
            store.sync.delete(f"{i:064d}")
        store.sync.close()


@pytest.mark.server
@pytest.mark.parametrize("database", ["99", "abc"])
def test_a_bad_redis_database_is_one_line(
    capsys: pytest.CaptureFixture[str], database: str
) -> None:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    url = REDIS.rsplit("/", 1)[0] + f"/{database}"
    one_line_failure(capsys, main(["stats", url]), "database")


@pytest.fixture
def redis_with_a_password(tmp_path: Path) -> Iterator[int]:
    """A redis-server of our own, on a free loopback port, that wants a password."""
    server = shutil.which("redis-server")
    if server is None:
        require_server("no redis-server to start")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    options = ["--port", str(port), "--bind", "127.0.0.1", "--requirepass", "right"]
    options += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen(
        [str(server), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, password="right").ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_a_wrong_redis_password_is_one_line_and_never_printed(
    capsys: pytest.CaptureFixture[str], redis_with_a_password: int
) -> None:
    url = f"redis://:wrong@127.0.0.1:{redis_with_a_password}/0"
    err = one_line_failure(capsys, main(["stats", url]), "AuthenticationError")
    assert "wrong" not in err
    assert main(["stats", f"redis://:right@127.0.0.1:{redis_with_a_password}/0"]) == 0
