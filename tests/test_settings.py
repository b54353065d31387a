"""Settings check every value when it is read, name the variable in the error, report
names they do not know, and check the options as the middleware will."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from flask import session as flask_session
from hypothesis import given
from hypothesis import strategies as st
from starlette.config import Config

from lazysession import ConfigurationError, MemoryStore, Settings
from lazysession.flask import LazySessionInterface
from lazysession.stores import SQLAlchemyStore

KEY = "k" * 40


def read(**values: object) -> Settings:
    return Settings.from_mapping(
        {
            "LAZYSESSION_SECRET_KEY": KEY,
            **{f"LAZYSESSION_{k.upper()}": v for k, v in values.items()},
        }
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("same_site", "bogus", "LAZYSESSION_SAME_SITE='bogus': expected lax, strict or none"),
        ("max_age", "0", "LAZYSESSION_MAX_AGE='0': expected more than 0 seconds"),
        ("max_age", "-5", "LAZYSESSION_MAX_AGE='-5': expected more than 0 seconds"),
        ("max_age", "1.5", "LAZYSESSION_MAX_AGE='1.5': expected a whole number of seconds"),
        ("idle_timeout", "0", "LAZYSESSION_IDLE_TIMEOUT='0': expected more than 0 seconds"),
        ("sweep_interval", "-1", "LAZYSESSION_SWEEP_INTERVAL='-1': expected 0 or more seconds"),
        ("cookie_name", "my session", "LAZYSESSION_COOKIE_NAME='my session': a cookie name"),
        ("https_only", "maybe", "LAZYSESSION_HTTPS_ONLY='maybe': expected true or false"),
        ("partitioned", "2", "LAZYSESSION_PARTITIONED='2': expected true or false"),
        ("domain", "a.com; b", "LAZYSESSION_DOMAIN='a.com; b': expected a host name"),
        ("on_store_error", "ignore", "LAZYSESSION_ON_STORE_ERROR='ignore': expected 503 or empty"),
        ("store_url", "ftp://x", "LAZYSESSION_STORE_URL: cannot tell which store 'ftp://x'"),
        ("store_url", "redis://h/abc", "the database 'abc' is not a number"),
    ],
)
def test_a_bad_value_is_refused_when_read_naming_the_variable(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        read(**{name: value})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_same_site_none_needs_https_only() -> None:
    with pytest.raises(
        ConfigurationError, match="LAZYSESSION_SAME_SITE=none needs LAZYSESSION_HTTPS_ONLY"
    ):
        read(same_site="none")
    assert read(same_site="none", https_only="true").same_site == "none"


def test_a_partitioned_cookie_needs_https_only() -> None:
    with pytest.raises(ConfigurationError, match="LAZYSESSION_PARTITIONED=true needs"):
        read(partitioned="true")


def test_built_directly_the_error_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match=r"^max_age=0: expected more than 0 seconds"):
        Settings(secret_key=[KEY], max_age=0)
    with pytest.raises(ConfigurationError, match=r"^secret_key is too short"):
        Settings(secret_key=["short"])


@given(st.text(max_size=12))
def test_any_text_for_a_number_of_seconds_is_a_number_or_a_configuration_error(
    text: str,
) -> None:
    try:
        settings = read(max_age=text)
    except ConfigurationError as error:
        message = str(error)
    else:
        assert settings.max_age is None or settings.max_age > 0
        return
    assert message.startswith("LAZYSESSION_MAX_AGE")


@given(st.text(max_size=12))
def test_any_text_for_a_flag_is_a_flag_or_a_configuration_error(text: str) -> None:
    try:
        settings = read(https_only=text)
    except ConfigurationError as error:
        message = str(error)
    else:
        assert isinstance(settings.https_only, bool)
        return
    assert message.startswith("LAZYSESSION_HTTPS_ONLY")


def test_typed_values_from_a_dict_are_read_as_they_are() -> None:
    settings = read(max_age=3600, https_only=True, sweep_interval=0, domain=None)
    assert (settings.max_age, settings.https_only, settings.sweep_interval) == (3600, True, 0)
    with pytest.raises(ConfigurationError, match="LAZYSESSION_MAX_AGE=True"):
        read(max_age=True)


def test_the_secret_key_never_appears_in_the_repr() -> None:
    assert KEY not in repr(read())


def test_an_unknown_name_is_reported_with_the_name_it_resembles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="lazysession"):
        read(maxage="60", colour="blue")
    assert caplog.messages == [
        "lazysession: LAZYSESSION_MAXAGE is not a lazysession setting "
        "(did you mean LAZYSESSION_MAX_AGE?); it is ignored",
        "lazysession: LAZYSESSION_COLOUR is not a lazysession setting; it is ignored",
    ]


def test_a_misspelt_secret_key_is_named_in_the_error() -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape("(LAZYSESSION_SECRETKEY is set: a typo?)")
    ):
        Settings.from_mapping({"LAZYSESSION_SECRETKEY": KEY})


def test_an_unknown_name_in_a_dot_env_file_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = tmp_path / ".env"
    env.write_text(f"LAZYSESSION_SECRET_KEY={KEY}\nLAZYSESSION_HTTPS_ONY=true\n")
    with caplog.at_level(logging.WARNING, logger="lazysession"):
        Settings.from_starlette_config(Config(env, environ={}))
    assert "did you mean LAZYSESSION_HTTPS_ONLY?" in caplog.text


def test_options_refuse_a_sync_driver_for_asgi_and_name_the_async_one(tmp_path: Path) -> None:
    settings = read(store_url=f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(ConfigurationError) as raised:
        settings.options()
    message = str(raised.value)
    assert message.startswith("LAZYSESSION_STORE_URL='sqlite:///")
    assert "sqlite+aiosqlite://" in message
    assert "options(wsgi=True)" in message
    assert not (tmp_path / "s.db").exists()


def test_options_for_wsgi_take_a_sync_driver(tmp_path: Path) -> None:
    options = read(store_url=f"sqlite:///{tmp_path / 's.db'}").options(wsgi=True)
    assert isinstance(options["store"], SQLAlchemyStore)


def test_options_name_the_extra_of_a_driver_that_is_not_installed() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'lazysession[mysql]'")):
        read(store_url="mysql://root@127.0.0.1/test").options()


def test_options_take_a_store_of_the_apps_own() -> None:
    store = MemoryStore()
    assert read().options(store)["store"] is store


def test_from_flask_config_the_apps_secret_key_signs() -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = KEY
    app.config["SECRET_KEY_FALLBACKS"] = ["o" * 40]
    app.config["LAZYSESSION_STORE_URL"] = "memory://"
    settings = Settings.from_mapping(app.config)
    assert settings.secret_key == [KEY, "o" * 40]
    app.session_interface = LazySessionInterface(store=settings.store())

    @app.post("/login")
    def login() -> str:
        flask_session["user"] = "ada"
        return "ok"

    @app.get("/me")
    def me() -> str:
        return str(flask_session.get("user"))

    client = app.test_client()
    client.post("/login")
    assert client.get("/me").text == "ada"


def test_from_flask_config_a_short_secret_key_names_it() -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "dev"
    with pytest.raises(ConfigurationError, match=r"^SECRET_KEY is too short"):
        Settings.from_mapping(app.config)


def test_a_lazysession_secret_key_wins_over_the_apps_own() -> None:
    settings = Settings.from_mapping({"SECRET_KEY": "x" * 40, "LAZYSESSION_SECRET_KEY": KEY})
    assert settings.secret_key == [KEY]
