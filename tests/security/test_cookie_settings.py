"""Settings a browser would refuse fail when the middleware is built; short keys warn
(issue 15, item 7).

Each rule is the browser's (RFC 6265bis cookie prefixes and attribute syntax, SameSite=None
and CHIPS' Partitioned needing Secure); a cookie that breaks one is silently dropped by
the browser, so the app would seem to work and never keep a session.
"""

from __future__ import annotations

import logging
from typing import Any

import flask
import pytest

from lazysession import ConfigurationError, MemoryStore
from lazysession import SessionMiddleware as AsgiMiddleware
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WsgiMiddleware
from tests.helpers import SECRET
from tests.security.asgi import app

REFUSED: dict[str, dict[str, Any]] = {
    "__Host- without https_only": {"session_cookie": "__Host-sid"},
    "__Host- with a domain": {
        "session_cookie": "__Host-sid",
        "https_only": True,
        "domain": "example.com",
    },
    "__Host- with a path": {"session_cookie": "__Host-sid", "https_only": True, "path": "/a"},
    "__Secure- without https_only": {"session_cookie": "__Secure-sid"},
    "same_site none without https_only": {"same_site": "none"},
    "partitioned without https_only": {"partitioned": True},
    "a path beyond latin-1": {"path": "/\u20ac"},
}


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


@pytest.mark.parametrize("options", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.parametrize("middleware", [AsgiMiddleware, WsgiMiddleware], ids=["asgi", "wsgi"])
def test_the_middleware_refuses_cookie_settings_a_browser_would_drop(
    middleware: Any, options: dict[str, Any]
) -> None:
    inner = app if middleware is AsgiMiddleware else wsgi_app
    with pytest.raises(ConfigurationError):
        middleware(inner, secret_key=SECRET, store=MemoryStore(), sweep_interval=None, **options)


FLASK_REFUSED = {
    "__Host- without SESSION_COOKIE_SECURE": {"SESSION_COOKIE_NAME": "__Host-sid"},
    "SameSite None without SESSION_COOKIE_SECURE": {"SESSION_COOKIE_SAMESITE": "None"},
    "Partitioned without SESSION_COOKIE_SECURE": {"SESSION_COOKIE_PARTITIONED": True},
}


@pytest.mark.parametrize("config", FLASK_REFUSED.values(), ids=FLASK_REFUSED.keys())
def test_flask_refuses_cookie_settings_a_browser_would_drop_at_the_first_request(
    config: dict[str, Any],
) -> None:
    flask_app = flask.Flask(__name__)
    flask_app.config.update(SECRET_KEY=SECRET, TESTING=True, **config)
    flask_app.session_interface = LazySessionInterface(store=MemoryStore(), sweep_interval=None)
    flask_app.add_url_rule("/", "index", lambda: "ok")
    with pytest.raises(ConfigurationError):
        flask_app.test_client().get("/")


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno == logging.WARNING and "secret" in r.getMessage()
    ]


@pytest.mark.parametrize(
    "secret_key",
    ["tiny-key", ["x" * 40, "old-key"], ["alpha-key", "beta-key", "gamma-key"], "k" * 31],
    ids=["one short key", "a short retired key", "three short keys", "31 bytes"],
)
def test_a_secret_key_under_32_bytes_logs_exactly_one_warning(
    secret_key: str | list[str], caplog: pytest.LogCaptureFixture
) -> None:
    AsgiMiddleware(app, secret_key=secret_key, sweep_interval=None)
    (warning,) = warnings_in(caplog)
    assert "shorter than 32 bytes" in warning.getMessage()
    for key in secret_key if isinstance(secret_key, list) else [secret_key]:
        assert key not in warning.getMessage()


@pytest.mark.parametrize("secret_key", ["x" * 32, "\u00e9" * 16, ["y" * 32, "z" * 64]])
def test_a_secret_key_of_32_bytes_or_more_logs_nothing(
    secret_key: object, caplog: pytest.LogCaptureFixture
) -> None:
    AsgiMiddleware(app, secret_key=secret_key, sweep_interval=None)
    assert not warnings_in(caplog)


def test_flask_warns_once_for_a_short_secret_key(caplog: pytest.LogCaptureFixture) -> None:
    flask_app = flask.Flask(__name__)
    flask_app.config.update(SECRET_KEY="dev")
    flask_app.session_interface = LazySessionInterface(sweep_interval=None)
    flask_app.add_url_rule("/", "index", lambda: str(len(flask.session)))
    http = flask_app.test_client()
    for _ in range(3):
        assert http.get("/").status_code == 200
    assert len(warnings_in(caplog)) == 1
