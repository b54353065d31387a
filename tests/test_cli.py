"""The operators' command: stats, sweep with progress, ddl, and one-line failures."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lazysession.cli import main
from lazysession.stores import SQLAlchemyStore


def backlog(path: Path, expired: int, live: int) -> str:
    url = f"sqlite:///{path / 'sessions.db'}"
    store = SQLAlchemyStore(url)
    now = datetime.now(timezone.utc)
    for i in range(expired):
        store.sync.save(f"{i:064d}", {"i": i}, expires_at=now - timedelta(seconds=1))
    for i in range(live):
        store.sync.save(f"{i + expired:064d}", {"i": i}, expires_at=now + timedelta(hours=1))
    store.sync.close()
    return f"sqlite+aiosqlite:///{path / 'sessions.db'}"


def test_stats_reports_held_and_expired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = backlog(tmp_path, expired=7, live=3)
    assert main(["stats", url]) == 0
    out = capsys.readouterr().out
    assert "sessions held: 10" in out
    assert "expired, awaiting the sweep: 7" in out
    assert "table and indexes:" in out


def test_a_dry_run_deletes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = backlog(tmp_path, expired=5, live=2)
    assert main(["sweep", url, "--dry-run"]) == 0
    assert "would delete 5 expired sessions" in capsys.readouterr().out
    assert main(["stats", url]) == 0
    assert "sessions held: 7" in capsys.readouterr().out


def test_sweep_purges_the_backlog_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = backlog(tmp_path, expired=25, live=4)
    assert main(["sweep", url, "--batch-size", "10"]) == 0
    captured = capsys.readouterr()
    assert "deleted 25 expired sessions" in captured.out
    assert "deleted 10 of 25 (40%)" in captured.err
    main(["stats", url])
    assert "sessions held: 4" in capsys.readouterr().out


def test_ddl_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ddl", "postgresql+asyncpg://u@h/db"]) == 0
    assert "CREATE TABLE lazysession_sessions" in capsys.readouterr().out


def test_a_bad_url_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "ftp://nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lazysession: cannot tell which store")
    assert err.count("\n") == 1


def test_an_unreachable_store_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["stats", f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lazysession: ")
    assert err.count("\n") == 1
