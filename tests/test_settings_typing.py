"""``Settings.options()`` is typed as the middleware's keywords: mypy accepts
``SessionMiddleware(app, **settings.options())`` and refuses a value outside a choice."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = """
from typing import Any

from lazysession import SessionMiddleware, Settings
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware


async def app(scope: Any, receive: Any, send: Any) -> None: ...


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return []


settings = Settings(secret_key=["k" * 32], same_site="strict", on_store_error="empty")
SessionMiddleware(app, **settings.options())
WSGISessionMiddleware(wsgi_app, **settings.options(wsgi=True), record_device=True)
reveal_type(settings.options()["same_site"])
"""


def check(source: str, tmp_path: Path) -> tuple[str, int]:
    module = tmp_path / "uses_settings.py"
    module.write_text(textwrap.dedent(source))
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(module),
        ]
    )
    return out + err, status


def test_the_options_type_check_as_the_middlewares_keywords(tmp_path: Path) -> None:
    out, _status = check(SNIPPET, tmp_path)
    assert "Literal['strict']" in out, out  # the middleware's choice, not a plain str
    assert "error:" not in out, out


def test_a_same_site_outside_the_choices_fails_to_type_check(tmp_path: Path) -> None:
    source = (
        'from lazysession import Settings\nSettings(secret_key=["k" * 32], same_site="sideways")\n'
    )
    out, status = check(source, tmp_path)
    assert status == 1
    assert "same_site" in out or "Literal" in out, out
