"""Flask with ``encrypt=True``: Flask's tagged JSON and encryption compose (each value is
tagged, then encrypted; decrypted, then untagged), on the cookie store and server stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import flask
import pytest
from markupsafe import Markup

from lazysession import MemoryStore, SQLAlchemyStore, Store
from lazysession.flask import LazySessionInterface
from tests.crypto.stores import dump
from tests.helpers import SECRET

MARKER = "marker-91b2-flask-never-in-a-dump"
VALUES: dict[str, Any] = {
    "pair": (1, "two"),
    "raw": b"\x00\xffbytes",
    "when": datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "html": Markup("<b>bold</b>"),
    "nested": {"t": (3, 4), "secret": MARKER},
}


@pytest.fixture(params=["cookie", "memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store | None]:
    if request.param == "cookie":
        yield None
    elif request.param == "memory":
        yield MemoryStore()
    else:
        sql = SQLAlchemyStore(f"sqlite:///{tmp_path / 'sessions.db'}")
        yield sql
        sql.sync.close()


def make_app(store: Store | None) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    app.session_interface = LazySessionInterface(store=store, encrypt=True, sweep_interval=None)

    @app.route("/write")
    def write() -> str:
        flask.session.update(VALUES)
        flask.session.permanent = True
        return "ok"

    @app.route("/read")
    def read() -> dict[str, Any]:
        return {key: repr(value) for key, value in flask.session.items()}

    return app


def test_tagged_values_come_back_as_they_went_in_when_encrypted(store: Store | None) -> None:
    app = make_app(store)
    http = app.test_client()
    assert http.get("/write").status_code == 200
    seen = http.get("/read").get_json()
    assert seen == {**{key: repr(value) for key, value in VALUES.items()}, "_permanent": "True"}
    cookie = http.get_cookie("session")
    assert cookie is not None
    assert MARKER not in cookie.value and "pair" not in cookie.value
    if store is not None:
        everything = dump(store)
        for secret in (MARKER, "nested", "bold", "12345678"):
            assert secret not in everything


def test_a_permanent_encrypted_session_gets_a_lasting_cookie(store: Store | None) -> None:
    http = make_app(store).test_client()
    response = http.get("/write")
    assert "Expires=" in response.headers["Set-Cookie"]
    assert http.get("/read").get_json()["pair"] == repr((1, "two"))
