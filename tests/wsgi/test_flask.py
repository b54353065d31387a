"""Flask's session through lazysession: Flask's settings, lazysession's rules."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient
from markupsafe import Markup

from lazysession import ConfigurationError, MemoryStore, Store
from lazysession.flask import LazySessionInterface
from lazysession.stores import SyncStore
from tests.helpers import Clock
from tests.shells.stores import RecordedSync

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


class RecordingSyncStore(MemoryStore):
    """A memory store whose blocking side counts the calls the interface makes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: Counter[str] = Counter()
        self._counting = RecordedSync(super().sync, self.calls)

    @property
    def sync(self) -> SyncStore:
        return self._counting


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
        assert attribute in cookie.lower()
    assert "httponly" not in cookie.lower()


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


# -- values keep their Flask types (tagged JSON, never pickle) -------------------------------

SPECIAL = {
    "t": (1, 2, 3),
    "b": b"\xff",
    "m": Markup("<em>hi</em>"),
    "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "d": datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc),
    "looks_tagged": {" t": "not-a-tuple"},
}


def typed_app(store: Store | None) -> flask.Flask:
    app = make_app(store, TESTING=True)

    @app.get("/special")
    def special() -> Any:
        flask.session.update(SPECIAL)
        return ""

    @app.get("/one-more")
    def one_more() -> Any:
        flask.session["more"] = ("x", b"\x00")  # merged onto the stored copy
        return ""

    @app.get("/check")
    def check() -> Any:
        for key, value in SPECIAL.items():
            assert flask.session[key] == value, key
            assert type(flask.session[key]) is type(value), key
        return ""

    return app


def test_values_come_back_with_their_flask_types(sync_store: Store) -> None:
    http = typed_app(sync_store).test_client()
    http.get("/special")
    http.get("/one-more")
    assert http.get("/check").status_code == 200
    with http.session_transaction() as session:
        assert session["more"] == ("x", b"\x00")


def test_values_come_back_with_their_flask_types_in_the_cookie() -> None:
    http = typed_app(None).test_client()
    http.get("/special")
    assert http.get("/check").status_code == 200


def test_the_stored_form_is_flasks_tagged_json() -> None:
    store = MemoryStore()
    http = typed_app(store).test_client()
    http.get("/special")
    (record,) = [store.sync.read(key) for key in list(store._entries)]
    assert record is not None
    stored = json.loads(json.dumps(record.data))  # plain JSON, nothing pickled
    assert stored["t"] == {" t": [1, 2, 3]}
    assert stored["m"] == {" m": "<em>hi</em>"}


def test_flashed_messages_keep_tuples_and_markup(sync_store: Store) -> None:
    app = make_app(sync_store, TESTING=True)

    @app.get("/flash")
    def flash() -> Any:
        flask.flash(Markup("<b>saved</b>"), "info")
        return ""

    @app.get("/show")
    def show() -> Any:
        (message,) = flask.get_flashed_messages(with_categories=True)
        assert message == ("info", Markup("<b>saved</b>"))
        assert type(message[1]) is Markup
        return ""

    http = app.test_client()
    http.get("/flash")
    assert http.get("/show").status_code == 200


# -- settings are read as Flask reads them ------------------------------------------------


def test_a_secret_key_changed_after_the_first_request_is_used() -> None:
    app = make_app(MemoryStore())
    http = app.test_client()
    http.get("/write?user=ada")
    app.secret_key = "another-secret-" + "q" * 20
    assert http.get("/read").json == {}
    app.config["SECRET_KEY_FALLBACKS"] = ["flask-secret-" + "x" * 20]
    assert http.get("/read").json == {"user": "ada"}


def test_cookie_settings_changed_after_the_first_request_apply() -> None:
    app = make_app(MemoryStore())
    http = app.test_client()
    http.get("/write?a=1")
    app.config.update(SESSION_COOKIE_NAME="other", SESSION_COOKIE_PATH="/app")
    cookie = http.get("/write?a=2").headers["Set-Cookie"]
    assert cookie.startswith("other=")
    assert "Path=/app" in cookie


# -- cookies as Flask writes them ----------------------------------------------------------


def test_samesite_none_sends_no_samesite_attribute() -> None:
    http = make_app(MemoryStore(), SESSION_COOKIE_SAMESITE=None).test_client()
    assert "samesite" not in http.get("/write?a=1").headers["Set-Cookie"].lower()


def test_a_bad_samesite_names_the_setting() -> None:
    app = make_app(MemoryStore(), SESSION_COOKIE_SAMESITE="sometimes", TESTING=True)
    with pytest.raises(ConfigurationError, match="SESSION_COOKIE_SAMESITE"):
        app.test_client().get("/write?a=1")


def test_a_leading_dot_domain_is_sent_without_the_dot() -> None:
    http = make_app(MemoryStore(), SESSION_COOKIE_DOMAIN=".example.com").test_client()
    cookie = http.get("/write?a=1", base_url="http://www.example.com").headers["Set-Cookie"]
    assert "Domain=example.com" in cookie


def test_a_permanent_cookie_carries_expires_as_well_as_max_age() -> None:
    clock = Clock()
    app = make_app(MemoryStore(clock=clock), PERMANENT_SESSION_LIFETIME=timedelta(hours=2))
    app.session_interface = LazySessionInterface(
        store=MemoryStore(clock=clock), clock=clock, sweep_interval=None
    )
    cookie = app.test_client().get("/write?user=ada&permanent=1").headers["Set-Cookie"]
    assert "Max-Age=7200" in cookie
    assert "Expires=Sat, 28 Nov 2026 14:00:00 GMT" in cookie


def test_the_deleting_cookie_has_an_empty_value() -> None:
    http = make_app(MemoryStore()).test_client()
    http.get("/write?user=ada")
    cookie = http.get("/clear").headers["Set-Cookie"]
    assert cookie.startswith("session=;")
    assert "Max-Age=0" in cookie


# -- SESSION_PERMANENT and SESSION_REFRESH_EACH_REQUEST ------------------------------------


def refreshing_app(
    store: RecordingSyncStore, clock: Clock, **config: Any
) -> tuple[flask.Flask, FlaskClient]:
    app = make_app(store, PERMANENT_SESSION_LIFETIME=timedelta(seconds=100), **config)
    app.session_interface = LazySessionInterface(store=store, clock=clock, sweep_interval=None)
    return app, app.test_client()


def test_a_refresh_is_an_expiry_only_touch_once_due() -> None:
    clock = Clock()
    store = RecordingSyncStore(clock=clock)
    _, http = refreshing_app(store, clock)
    http.get("/write?user=ada&permanent=1")
    clock.advance(10)
    assert "Set-Cookie" not in http.get("/read").headers  # not due: no touch, no cookie
    assert store.calls["touch"] == 0
    clock.advance(45)  # past half the lifetime since the write
    response = http.get("/read")
    assert response.json == {"user": "ada", "permanent": "1", "_permanent": True}
    assert "Max-Age=100" in response.headers["Set-Cookie"]
    assert (store.calls["touch"], store.calls["save"], store.calls["update"]) == (1, 1, 0)


def test_a_refreshed_session_outlives_its_lifetime_from_the_last_write() -> None:
    clock = Clock()
    store = RecordingSyncStore(clock=clock)
    _, http = refreshing_app(store, clock)
    http.get("/write?user=ada&permanent=1")
    for _ in range(4):
        clock.advance(60)
        assert http.get("/untouched").status_code == 200  # a request, the session unused
    assert http.get("/read").json == {"user": "ada", "permanent": "1", "_permanent": True}


def test_without_the_refresh_a_session_ends_its_lifetime_after_the_last_write() -> None:
    clock = Clock()
    store = RecordingSyncStore(clock=clock)
    _, http = refreshing_app(store, clock, SESSION_REFRESH_EACH_REQUEST=False)
    http.get("/write?user=ada&permanent=1")
    clock.advance(90)
    assert "Set-Cookie" not in http.get("/read").headers
    clock.advance(20)
    assert http.get("/read").json == {}
    assert store.calls["touch"] == 0


def test_touch_after_zero_refreshes_on_every_request_as_flask_does() -> None:
    clock = Clock()
    store = RecordingSyncStore(clock=clock)
    app, http = refreshing_app(store, clock)
    app.session_interface = LazySessionInterface(
        store=store, clock=clock, sweep_interval=None, touch_after=0
    )
    http.get("/write?user=ada&permanent=1")
    clock.advance(1)
    assert "Max-Age=100" in http.get("/read").headers["Set-Cookie"]


def test_the_refresh_never_creates_a_session() -> None:
    clock = Clock()
    store = RecordingSyncStore(clock=clock)
    _, http = refreshing_app(store, clock, SESSION_PERMANENT=True)
    response = http.get("/read")
    assert "Set-Cookie" not in response.headers
    assert store.sync.count() == 0


def test_session_permanent_makes_new_sessions_permanent_without_a_write() -> None:
    http = make_app(MemoryStore(), SESSION_PERMANENT=True).test_client()
    assert "Set-Cookie" not in http.get("/read").headers
    assert "Max-Age=" in http.get("/write?user=ada").headers["Set-Cookie"]


# -- no SECRET_KEY: Flask's null session ---------------------------------------------------


def test_without_a_secret_key_routes_that_do_not_write_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    http = make_app(MemoryStore(), SECRET_KEY=None).test_client()
    assert http.get("/untouched").status_code == 200
    assert http.get("/read").json == {}
    warnings = [r for r in caplog.records if "no SECRET_KEY" in r.getMessage()]
    assert len(warnings) == 1


def test_without_a_secret_key_a_write_raises_flasks_error() -> None:
    app = make_app(MemoryStore(), SECRET_KEY=None, TESTING=True)
    with pytest.raises(RuntimeError, match="session is unavailable because no secret key"):
        app.test_client().get("/write?user=ada")


# -- Flask-Session's API and settings ------------------------------------------------------


def test_sid_is_the_store_key_never_the_cookie() -> None:
    store = MemoryStore()
    app = make_app(store)

    @app.get("/sid")
    def show_sid() -> Any:
        return {"sid": flask.session.sid}  # type: ignore[attr-defined]

    http = app.test_client()
    assert http.get("/sid").json == {"sid": None}
    http.get("/write?user=ada")
    sid: str = (http.get("/sid").json or {})["sid"]
    cookie = http.get_cookie("session")
    assert cookie is not None and sid not in cookie.value
    assert store.sync.read(sid) is not None


def test_the_interfaces_regenerate_moves_the_session_to_a_new_id() -> None:
    store = MemoryStore()
    app = make_app(store)

    @app.get("/regenerate")
    def regenerate() -> Any:
        app.session_interface.regenerate(flask.session)  # type: ignore[attr-defined]
        return ""

    http = app.test_client()
    http.get("/write?user=ada")
    before = http.get_cookie("session")
    http.get("/regenerate")
    after = http.get_cookie("session")
    assert before is not None and after is not None and before.value != after.value
    assert http.get("/read").json == {"user": "ada"}
    stale = app.test_client()
    stale.set_cookie("session", before.value)
    assert stale.get("/read").json == {}  # the old id grants nothing


@pytest.mark.parametrize(
    ("setting", "value", "advice"),
    [
        ("SESSION_TYPE", "redis", "store="),
        ("SESSION_KEY_PREFIX", "session:", "prefix="),
        ("SESSION_USE_SIGNER", False, "always signed"),
        ("SESSION_SERIALIZATION_FORMAT", "msgpack", "tagged JSON"),
    ],
)
def test_a_flask_session_setting_is_refused_with_what_replaces_it(
    setting: str, value: object, advice: str
) -> None:
    app = make_app(MemoryStore(), TESTING=True, **{setting: value})
    with pytest.raises(ConfigurationError, match=f"{setting}: .*{advice}"):
        app.test_client().get("/read")


def test_session_use_signer_true_is_accepted() -> None:
    http = make_app(MemoryStore(), SESSION_USE_SIGNER=True).test_client()
    http.get("/write?user=ada")
    assert http.get("/read").json == {"user": "ada"}


@pytest.mark.parametrize(
    ("option", "value"),
    [("idle_timeout", -5), ("max_age", "3600"), ("touch_after", 2), ("store", MemoryStore)],
)
def test_a_bad_interface_option_is_a_configuration_error_naming_it(
    option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{option}="):
        LazySessionInterface(**{option: value})  # type: ignore[arg-type]


def test_a_store_url_builds_the_store() -> None:
    interface = LazySessionInterface("memory://", sweep_interval=None)
    assert isinstance(interface.store, MemoryStore)
