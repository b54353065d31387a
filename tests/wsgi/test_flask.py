"""Flask's session through lazysession: Flask's settings, lazysession's rules."""

from __future__ import annotations

import importlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import flask
import pytest

from lazysession import ConfigurationError, MemoryStore, Store
from lazysession.flask import LazySessionInterface

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def make_app(store: Store | None, **config: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update({"SECRET_KEY": "flask-secret-" + "x" * 20, **config})
    app.session_interface = LazySessionInterface(store=store, sweep_interval=None)

    @app.get("/read")
    def read() -> Any:
        return dict(flask.session)

    @app.get("/untouched")
    def untouched() -> Any:
        return "ok"

    @app.get("/write")
    def write() -> Any:
        flask.session.update(flask.request.args)
        if flask.request.args.get("permanent"):
            flask.session.permanent = True
        return dict(flask.session)

    @app.get("/clear")
    def clear() -> Any:
        flask.session.clear()
        return "cleared"

    return app


def test_a_visitor_who_only_reads_creates_nothing(sync_store: Store) -> None:
    http = make_app(sync_store).test_client()
    response = http.get("/read")
    assert response.json == {}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == "Cookie"
    assert sync_store.sync.count() == 0


def test_an_untouched_route_has_no_vary(sync_store: Store) -> None:
    response = make_app(sync_store).test_client().get("/untouched")
    assert "Vary" not in response.headers
    assert "Set-Cookie" not in response.headers


def test_a_write_creates_the_session_and_it_reads_back(sync_store: Store) -> None:
    http = make_app(sync_store).test_client()
    http.get("/write?user=ada")
    assert http.get("/read").json == {"user": "ada"}
    assert sync_store.sync.count() == 1


def test_a_bearer_request_stores_nothing(sync_store: Store) -> None:
    http = make_app(sync_store).test_client()
    response = http.get("/write?user=ada", headers={"Authorization": "Bearer t"})
    assert response.json == {"user": "ada"}
    assert "Set-Cookie" not in response.headers
    assert sync_store.sync.count() == 0


def test_clear_deletes_the_session(sync_store: Store) -> None:
    http = make_app(sync_store).test_client()
    http.get("/write?user=ada")
    assert "Max-Age=0" in http.get("/clear").headers["Set-Cookie"]
    assert sync_store.sync.count() == 0


def test_a_non_permanent_session_gets_a_browser_session_cookie() -> None:
    http = make_app(MemoryStore()).test_client()
    assert "Max-Age" not in http.get("/write?user=ada").headers["Set-Cookie"]


def test_a_permanent_session_lives_permanent_session_lifetime() -> None:
    http = make_app(MemoryStore(), PERMANENT_SESSION_LIFETIME=timedelta(hours=2)).test_client()
    cookie = http.get("/write?user=ada&permanent=1").headers["Set-Cookie"]
    assert "Max-Age=7200" in cookie


def test_flasks_cookie_settings_are_honoured() -> None:
    app = make_app(
        MemoryStore(),
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/app",
    )
    cookie = app.test_client().get("/write?a=1").headers["Set-Cookie"]
    assert cookie.startswith("sid=")
    for attribute in ("secure", "samesite=strict", "domain=example.com", "path=/app"):
        assert attribute in cookie
    assert "httponly" not in cookie


def test_a_cookie_signed_with_a_fallback_key_is_still_valid() -> None:
    store = MemoryStore()
    old = make_app(store, SECRET_KEY="old-secret-" + "y" * 20).test_client()
    old.get("/write?user=ada")
    value = old.get_cookie("session")
    assert value is not None
    new = make_app(
        store, SECRET_KEY="new-secret-" + "z" * 20, SECRET_KEY_FALLBACKS=["old-secret-" + "y" * 20]
    ).test_client()
    new.set_cookie("session", value.value)
    assert new.get("/read").json == {"user": "ada"}


def test_a_missing_secret_key_says_what_to_set() -> None:
    app = make_app(MemoryStore(), SECRET_KEY=None, TESTING=True)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        app.test_client().get("/read")


def test_the_flask_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZYSESSION_STORE_URL", f"sqlite:///{tmp_path / 's.db'}")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("flask_app", None)
    module = importlib.import_module("flask_app")
    http = module.app.test_client()
    assert http.get("/").json["sessions_in_store"] == 0
    api = http.get("/api/whoami", headers={"Authorization": "Bearer demo-token"})
    assert api.json["sessions_in_store"] == 0
    http.post("/login", data={"user": "ada"})
    http.post("/count")
    page = http.get("/").json
    assert page == {"user": "ada", "counter": 1, "sessions_in_store": 1}
    http.post("/logout")
    assert http.get("/").json["sessions_in_store"] == 0
    module.store.sync.close()
