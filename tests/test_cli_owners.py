"""The operators' commands about one owner's sessions: ``sessions`` lists them as a table,
``revoke`` ends them (all but ``--keep``), ``erase`` ends them all after asking; every
failure one line."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lazysession._expiry import META_KEY
from lazysession._identity import handle_of
from lazysession.cli import main
from lazysession.stores import SQLAlchemyStore


def logged_in(path: Path, owner: str, count: int, start: int = 0) -> list[str]:
    """``count`` sessions of ``owner`` in the SQLite file at ``path``; their handles."""
    store = SQLAlchemyStore(f"sqlite:///{path}")
    now = datetime.now(timezone.utc)
    handles = []
    for n in range(start, start + count):
        key = f"{n:064x}"
        meta = {
            "c": int(now.timestamp()),
            "u": owner,
            "a": now.timestamp(),
            "d": "Firefox on Linux",
        }
        store.sync.save(key, {"user": owner, META_KEY: meta}, expires_at=now + timedelta(hours=1))
        handles.append(handle_of(key))
    store.sync.close()
    return handles


def held(path: Path, owner: str) -> set[str]:
    store = SQLAlchemyStore(f"sqlite:///{path}")
    try:
        return {info.handle for info in store.sync.sessions_of(owner)}
    finally:
        store.sync.close()


def test_sessions_prints_a_table_of_the_owners_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sessions.db"
    handles = logged_in(db, "alice", 2)
    logged_in(db, "bob", 1, start=10)
    assert main(["sessions", f"sqlite:///{db}", "--owner", "alice"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["handle", "device", "created", "last", "seen", "expires"]
    assert {line.split()[0] for line in out[1:3]} == set(handles)
    assert "Firefox on Linux" in out[1]
    assert out[-1] == "2 live sessions of alice"


def test_sessions_of_an_owner_with_none_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sessions.db"
    logged_in(db, "bob", 1)
    assert main(["sessions", f"sqlite:///{db}", "--owner", "alice"]) == 0
    assert capsys.readouterr().out == "alice has no live session\n"


def test_revoke_ends_every_session_but_the_kept_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sessions.db"
    handles = logged_in(db, "alice", 3)
    assert main(["revoke", f"sqlite:///{db}", "--owner", "alice", "--keep", handles[1]]) == 0
    assert capsys.readouterr().out == "ended 2 sessions of alice\n"
    assert held(db, "alice") == {handles[1]}


def test_keep_must_be_a_handle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["revoke", f"sqlite:///{tmp_path / 'x.db'}", "--owner", "a", "--keep", "NOPE"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "session handle" in err


def test_erase_with_yes_ends_every_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sessions.db"
    logged_in(db, "alice", 2)
    bobs = logged_in(db, "bob", 1, start=10)
    assert main(["erase", f"sqlite:///{db}", "--owner", "alice", "--yes"]) == 0
    assert capsys.readouterr().out == "erased 2 sessions of alice\n"
    assert held(db, "alice") == set()
    assert held(db, "bob") == set(bobs)


def test_erase_without_yes_and_without_a_terminal_refuses_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    logged_in(db, "alice", 1)
    done = subprocess.run(
        [sys.executable, "-m", "lazysession", "erase", f"sqlite:///{db}", "--owner", "alice"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "--yes" in done.stderr
    assert len(held(db, "alice")) == 1


def test_the_owner_commands_only_look_at_a_database_that_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    assert main(["sessions", f"sqlite:///{missing}", "--owner", "alice"]) == 1
    assert "no database file" in capsys.readouterr().err
    assert not missing.exists()
