"""Settings from the environment, Starlette's Config or any mapping; stores from URLs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.config import Config

from lazysession import (
    ConfigurationError,
    CookieStore,
    MemoryStore,
    SessionMiddleware,
    Settings,
    store_from_url,
)
from lazysession.stores import RedisStore, SQLAlchemyStore
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware

KEY = "k" * 40


def test_a_missing_secret_key_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="LAZYSESSION_SECRET_KEY"):
        Settings.from_mapping({})


def test_a_short_secret_key_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="too short"):
        Settings.from_mapping({"LAZYSESSION_SECRET_KEY": "short"})


def test_every_documented_name_is_read() -> None:
    settings = Settings.from_mapping(
        {
            "LAZYSESSION_SECRET_KEY": f"{KEY},{'o' * 40}",
            "LAZYSESSION_STORE_URL": "memory://",
            "LAZYSESSION_MAX_AGE": "3600",
            "LAZYSESSION_IDLE_TIMEOUT": "600",
            "LAZYSESSION_SWEEP_INTERVAL": "60",
            "LAZYSESSION_COOKIE_NAME": "sid",
            "LAZYSESSION_HTTPS_ONLY": "true",
            "LAZYSESSION_SAME_SITE": "Strict",
            "LAZYSESSION_PARTITIONED": "yes",
            "LAZYSESSION_DOMAIN": "example.com",
            "LAZYSESSION_ON_STORE_ERROR": "empty",
        }
    )
    assert settings == Settings(
        secret_key=[KEY, "o" * 40],
        store_url="memory://",
        max_age=3600,
        idle_timeout=600,
        sweep_interval=60,
        cookie_name="sid",
        https_only=True,
        same_site="strict",
        partitioned=True,
        domain="example.com",
        on_store_error="empty",
    )


@pytest.mark.parametrize(("name", "value"), [("MAX_AGE", "soon"), ("HTTPS_ONLY", "maybe")])
def test_a_malformed_value_names_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_mapping({"LAZYSESSION_SECRET_KEY": KEY, f"LAZYSESSION_{name}": value})


def test_starlettes_config_reads_a_dot_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"LAZYSESSION_SECRET_KEY={KEY}\nLAZYSESSION_MAX_AGE=none\n")
    settings = Settings.from_starlette_config(Config(env, environ={}))
    assert settings.max_age is None


def test_options_build_the_middleware() -> None:
    settings = Settings.from_mapping(
        {"LAZYSESSION_SECRET_KEY": KEY, "LAZYSESSION_STORE_URL": "memory://"}
    )
    middleware = SessionMiddleware(lambda *a: None, **settings.options())  # type: ignore[arg-type]
    assert isinstance(middleware.store, MemoryStore)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("cookie://", CookieStore),
        ("memory://", MemoryStore),
        ("redis://127.0.0.1:6379/0", RedisStore),
        ("sqlite+aiosqlite:///s.db", SQLAlchemyStore),
        ("postgresql+asyncpg://u@h/db", SQLAlchemyStore),
        ("mysql+asyncmy://u@h/db", SQLAlchemyStore),
    ],
)
def test_a_store_url_picks_the_store(url: str, kind: type) -> None:
    assert isinstance(store_from_url(url), kind)


def test_an_unknown_store_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot tell which store"):
        store_from_url("ftp://example.com")


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    lazysession_secret_key: SecretStr
    lazysession_store_url: str = "memory://"
    lazysession_max_age: int | None = 600


def test_a_pydantic_settings_model_is_read_and_its_secret_unwrapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAZYSESSION_SECRET_KEY", KEY)
    monkeypatch.setenv("LAZYSESSION_MAX_AGE", "900")
    settings = Settings.from_model(AppSettings())  # type: ignore[call-arg]
    assert settings.secret_key == [KEY]
    assert (settings.store_url, settings.max_age) == ("memory://", 900)


# -- the middleware's own options -----------------------------------------------------------


def _app(scope: object, receive: object, send: object) -> None:
    """An app that is never called: these tests only build the middleware."""


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_age", "3600"),
        ("max_age", 1.5),
        ("max_age", True),
        ("idle_timeout", -5),
        ("idle_timeout", 0),
        ("idle_timeout", "600"),
        ("touch_after", 2),
        ("touch_after", -0.1),
        ("touch_after", "half"),
        ("max_size", 0),
        ("max_size", "64k"),
        ("sweep_interval", -1),
        ("sweep_interval", "hourly"),
        ("store", MemoryStore),
        ("store", 42),
        ("skip_persistence", "bearer"),
    ],
)
def test_a_bad_option_is_a_configuration_error_naming_it(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"^{option}="):
        SessionMiddleware(_app, KEY, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("max_age", [0, -1, None, 3600])
def test_max_age_takes_what_starlette_takes(max_age: int | None) -> None:
    middleware = SessionMiddleware(_app, KEY, max_age=max_age)  # type: ignore[arg-type]
    assert middleware.rules.cookie.max_age == max_age


def test_max_age_and_idle_timeout_take_a_timedelta() -> None:
    middleware = SessionMiddleware(
        _app,  # type: ignore[arg-type]
        KEY,
        max_age=timedelta(hours=1),
        idle_timeout=timedelta(minutes=10),
        store=MemoryStore(),
        sweep_interval=None,
    )
    assert middleware.rules.cookie.max_age == 3600
    assert middleware.rules.lifetimes.idle == 600


@pytest.mark.parametrize(
    ("url", "kind"),
    [("memory://", MemoryStore), ("redis://127.0.0.1:6379/0", RedisStore)],
)
def test_a_store_url_builds_the_store_it_names(url: str, kind: type) -> None:
    middleware = SessionMiddleware(_app, KEY, store=url, sweep_interval=None)  # type: ignore[arg-type]
    assert isinstance(middleware.store, kind)


def test_a_store_url_of_no_known_store_says_which_urls_work() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        SessionMiddleware(_app, KEY, store="ftp://example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize("middleware", [SessionMiddleware, WSGISessionMiddleware])
def test_a_missing_secret_key_names_session_middleware(middleware: type) -> None:
    with pytest.raises(ConfigurationError, match=r"^SessionMiddleware needs secret_key="):
        middleware(_app)
    with pytest.raises(ConfigurationError, match=r"^SessionMiddleware needs secret_key="):
        middleware(_app, secret_key=None)
