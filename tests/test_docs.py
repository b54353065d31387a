"""Every code sample in the README and in docs/ is run, so the docs cannot drift from
the code (Sybil reads the Markdown).

- ``python`` blocks run in order, one namespace per document, in a fresh directory, with
  ``SECRET_KEY`` and ``LAZYSESSION_SECRET_KEY`` set. Each time a block leaves a new
  ``app`` behind, a request is sent through it (ASGI, with its lifespan; Flask or WSGI),
  so middleware that a framework builds lazily is built and checked too.
  ``<!-- invisible-code-block: python -->`` comments give a block what a reader supplies.
- ``sh`` blocks name commands that are checked, not run (they name hosts like
  ``db.internal``): a ``lazysession`` line parses with the command's own parser, a
  ``pip install`` line names only extras that exist, a ``LAZYSESSION_*`` variable is a
  setting, ``scripts/dev.py`` is given one of its commands, and ``uvicorn MODULE:app``
  names an example that exists.
- The ``sql`` block of the table is the one ``ddl()`` prints for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import shlex
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

from lazysession.cli import parser as cli_parser
from lazysession.config import NAMES
from lazysession.stores import SQLAlchemyStore

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXTRAS = set(metadata.metadata("lazysession").get_all("Provides-Extra") or [])
DEV_COMMANDS = set(
    re.findall(r"python3 scripts/dev\.py (\w+)", (ROOT / "scripts/dev.py").read_text())
)
EXAMPLES = {path.stem for path in (ROOT / "examples").glob("*.py")}
SECRET = "docs-secret-" + "x" * 32


def check_shell(example: Example) -> None:
    """Each line of a shell sample names a command, flags and names that exist."""
    text = re.sub(r"\\\n", " ", example.parsed)
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        for word in words:
            if word.startswith(("LAZYSESSION_", "export LAZYSESSION_")) and "=" in word:
                name = word.split("=", 1)[0].removeprefix("LAZYSESSION_")
                assert name in NAMES, f"{name} is not a setting: {line}"
        while words and ("=" in words[0] or words[0] == "export"):
            words = words[1:]
        if not words:
            continue
        if words[0] == "lazysession" or words[:3] == ["python3", "-m", "lazysession"]:
            arguments = words[1:] if words[0] == "lazysession" else words[3:]
            if arguments in (["--version"], ["--help"]):
                continue
            cli_parser().parse_args(arguments)
        elif words[:2] == ["pip", "install"]:
            for extras in re.findall(r"lazysession\[([^\]]+)\]", line):
                unknown = set(extras.split(",")) - EXTRAS
                assert not unknown, f"no such extra {unknown}: {line}"
        elif words[:2] == ["python3", "scripts/dev.py"]:
            assert words[2] in DEV_COMMANDS, line
        elif words[0] == "uvicorn":
            module = words[1].split(":")[0]
            assert module in EXAMPLES or module == "app", f"no example {module}: {line}"


def check_sql(example: Example) -> None:
    """The table as documented is the table ``ddl()`` makes (comments and layout aside)."""

    def tokens(sql: str) -> list[str]:
        return re.findall(r"\w+|[(),;]", re.sub(r"--[^\n]*", "", sql).upper())

    ddl = SQLAlchemyStore("postgresql+asyncpg://app@db/app").ddl()
    assert tokens(example.parsed) == tokens(ddl)


SYBIL = Sybil(
    parsers=[
        PythonCodeBlockParser(),
        CodeBlockParser("sh", evaluator=check_shell),
        CodeBlockParser("sql", evaluator=check_sql),
        SkipParser(),
    ],
)


def exercise(app: Any) -> None:
    """One request through an app a sample built."""
    if hasattr(app, "test_client"):  # Flask
        assert app.test_client().get("/").status_code < 500
        return
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):

        async def get() -> int:
            lifespan = getattr(getattr(app, "router", None), "lifespan_context", None)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                if lifespan is None:
                    return (await client.get("/")).status_code
                async with lifespan(app):
                    return (await client.get("/")).status_code

        assert asyncio.run(get()) < 500
    else:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
            assert client.get("/").status_code < 500


def examples(path: Path) -> Iterator[Example]:
    """The document's samples, in order, sharing one namespace; they run as a script
    would (Flask finds its root path from ``__name__``)."""
    document = SYBIL.parse(path)
    document.namespace["__name__"] = "__main__"
    yield from document.examples()


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_every_sample_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("LAZYSESSION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("LAZYSESSION_SECRET_KEY", SECRET)
    exercised: set[int] = set()
    for example in examples(path):
        example.evaluate()
        app = example.namespace.get("app")
        if app is not None and id(app) not in exercised:
            exercised.add(id(app))
            exercise(app)
