"""A base install (``pip install lazysession``, no extras) imports, runs and says what to
install for everything that needs more.

The base install is a fresh virtual environment that sees only lazysession's sources and
the distributions its base requirements resolve to, read from the installed metadata
(so no download); the checks run in that environment's own interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

SRC = Path(__file__).resolve().parent.parent / "src"


def base_distributions() -> set[str]:
    """lazysession's base requirements and theirs, recursively, as installed here."""
    seen: set[str] = set()
    pending = ["lazysession"]
    while pending:
        name = pending.pop()
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            key = requirement.name.lower().replace("_", "-")
            if key not in seen:
                seen.add(key)
                pending.append(requirement.name)
    return seen


def top_level_paths(distribution: str) -> set[Path]:
    """What a distribution puts on ``sys.path``: its packages and modules."""
    dist = metadata.distribution(distribution)
    paths: set[Path] = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info")) or first in ("..", "__pycache__"):
            continue
        if len(file.parts) == 1 and not first.endswith(".py"):
            continue
        paths.add(Path(str(dist.locate_file(first))))
    return paths


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base install's interpreter."""
    root = tmp_path_factory.mktemp("base-install")
    venv.create(root / "venv", with_pip=False)
    shelf = root / "base-dependencies"
    shelf.mkdir()
    for distribution in base_distributions():
        for path in top_level_paths(distribution):
            (shelf / path.name).symlink_to(path)
    [site] = (root / "venv").glob("lib/python*/site-packages")
    (site / "base.pth").write_text(f"{SRC}\n{shelf}\n")
    return root / "venv" / "bin" / "python"


def run(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_environment_holds_no_extra(python: Path) -> None:
    result = run(python, "import sqlalchemy")
    assert "No module named 'sqlalchemy'" in result.stderr
    assert run(python, "import redis, starlette").returncode == 1


def test_import_star_works_without_extras(python: Path) -> None:
    result = run(
        python,
        """
        from lazysession import *
        assert SessionMiddleware and Settings and MemoryStore and CookieStore
        assert "SQLAlchemyStore" not in dir() and "RedisStore" not in dir()
        print("ok")
        """,
    )
    assert result.stdout == "ok\n", result.stderr


def test_a_store_by_name_says_which_extra_to_install(python: Path) -> None:
    result = run(python, "from lazysession import SQLAlchemyStore")
    assert "pip install 'lazysession[sqlalchemy]'" in result.stderr
    result = run(python, "from lazysession import RedisStore")
    assert "pip install 'lazysession[redis]'" in result.stderr


@pytest.mark.parametrize(
    ("function", "extra"),
    [("register_prometheus", "prometheus"), ("register_opentelemetry", "opentelemetry")],
)
def test_an_exporter_names_its_extra(python: Path, function: str, extra: str) -> None:
    result = run(
        python,
        f"""
        from lazysession.metrics import Metrics, {function}
        {function}(Metrics())
        """,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith(f"pip install 'lazysession[{extra}]'"), (
        result.stderr
    )


def test_encryption_names_its_extra(python: Path) -> None:
    result = run(
        python,
        """
        from lazysession import ConfigurationError, SessionMiddleware
        try:
            SessionMiddleware(None, secret_key="k" * 40, encrypt=True)
        except ConfigurationError as error:
            print(error)
        """,
    )
    assert "pip install 'lazysession[encryption]'" in result.stdout, result.stderr


def test_settings_name_the_extra_for_a_database_url(python: Path) -> None:
    result = run(
        python,
        """
        from lazysession import ConfigurationError, Settings
        settings = Settings.from_mapping({
            "LAZYSESSION_SECRET_KEY": "k" * 40,
            "LAZYSESSION_STORE_URL": "postgresql+asyncpg://app@db/app",
        })
        try:
            settings.options()
        except ConfigurationError as error:
            print(error)
        """,
    )
    assert "pip install 'lazysession[sqlalchemy]'" in result.stdout, result.stderr


def test_the_command_runs_and_names_the_extra(python: Path, tmp_path: Path) -> None:
    version = subprocess.run(
        [str(python), "-m", "lazysession", "--version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.startswith("lazysession ")
    (tmp_path / "s.db").touch()
    stats = subprocess.run(
        [str(python), "-m", "lazysession", "stats", f"sqlite:///{tmp_path / 's.db'}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert stats.returncode == 1
    assert stats.stderr.count("\n") == 1
    assert "pip install 'lazysession[sqlalchemy]'" in stats.stderr


if sys.platform == "win32":  # pragma: no cover - the venv layout above is POSIX's
    pytestmark = pytest.mark.skip("POSIX venv layout")
