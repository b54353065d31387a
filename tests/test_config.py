"""Settings from the environment, Starlette's Config or any mapping; stores from URLs."""

from __future__ import annotations

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
