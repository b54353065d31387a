"""Building the middleware from settings: environment variables, ``.env`` files through
Starlette's ``Config``, a pydantic-settings model, or any mapping; and picking a store
from a URL.

One set of names, each with the ``LAZYSESSION_`` prefix:

==========================  =================================================================
``SECRET_KEY``              required; 32 characters or more. A comma-separated list rotates.
``STORE_URL``               ``cookie://`` (default), ``memory://``, ``redis://...``,
                            ``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``, ...
``MAX_AGE``                 seconds (absolute lifetime), ``none`` for a browser session
``IDLE_TIMEOUT``            seconds, or unset
``SWEEP_INTERVAL``          seconds; ``0`` disables the sweep
``COOKIE_NAME``             default ``session``
``HTTPS_ONLY``              ``true``/``false``
``SAME_SITE``               ``lax`` (default), ``strict``, ``none``
``PARTITIONED``             ``true``/``false``: a CHIPS cookie, for an app embedded cross-site
``DOMAIN``                  cookie domain, or unset
``ON_STORE_ERROR``          ``503`` (default) or ``empty``
==========================  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigurationError
from .stores import CookieStore, MemoryStore, Store

PREFIX = "LAZYSESSION_"
MIN_SECRET_LENGTH = 32


def store_from_url(url: str, **options: Any) -> Store:
    """The store a URL names: ``cookie://``, ``memory://``, ``redis://`` (``rediss://``,
    ``redis+cluster://``), or any SQLAlchemy URL."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "cookie":
        return CookieStore(**options)
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme in ("redis", "rediss", "unix", "redis+cluster"):
        from .stores import RedisStore

        if scheme == "redis+cluster":
            return RedisStore("redis" + url[len("redis+cluster") :], cluster=True, **options)
        return RedisStore(url, **options)
    if scheme.split("+")[0] in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
        from .stores import SQLAlchemyStore

        return SQLAlchemyStore(url, **options)
    raise ConfigurationError(
        f"cannot tell which store {url!r} names: use cookie://, memory://, redis://..., "
        "or a database URL such as sqlite+aiosqlite:///sessions.db"
    )


def _unwrap(value: Any) -> Any:
    """The value behind a pydantic ``SecretStr`` (its ``str()`` is asterisks)."""
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{PREFIX}{name}={value!r}: expected true or false")


def _seconds(name: str, value: str, *, allow_none: bool) -> int | None:
    if allow_none and value.strip().lower() in ("", "none", "null"):
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise ConfigurationError(
            f"{PREFIX}{name}={value!r}: expected a number of seconds"
        ) from None
    if seconds < 0:
        raise ConfigurationError(f"{PREFIX}{name} must not be negative")
    return seconds


@dataclass(frozen=True)
class Settings:
    """The middleware's settings, checked once; ``options()`` are its keyword arguments."""

    secret_key: list[str]
    store_url: str = "cookie://"
    max_age: int | None = 14 * 24 * 60 * 60
    idle_timeout: int | None = None
    sweep_interval: int = 300
    cookie_name: str = "session"
    https_only: bool = False
    same_site: str = "lax"
    partitioned: bool = False
    domain: str | None = None
    on_store_error: str = "503"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = PREFIX) -> Settings:
        """Read ``LAZYSESSION_*`` names from a mapping (``os.environ``, a dict, a pydantic
        model's ``model_dump()`` with upper-case keys)."""
        return cls.from_lookup(lambda name: values.get(prefix + name), prefix)

    @classmethod
    def from_model(cls, model: Any, prefix: str = PREFIX) -> Settings:
        """Read a pydantic(-settings) model whose fields are named ``lazysession_*``;
        ``SecretStr`` values are unwrapped."""
        values = {name.upper(): _unwrap(value) for name, value in model.model_dump().items()}
        return cls.from_mapping(values, prefix)

    @classmethod
    def from_starlette_config(cls, config: Callable[..., Any]) -> Settings:
        """Read through Starlette's ``Config`` (the environment, then a ``.env`` file)."""
        return cls.from_lookup(lambda name: config(PREFIX + name, default=None))

    @classmethod
    def from_lookup(cls, lookup: Callable[[str], Any], prefix: str = PREFIX) -> Settings:
        def get(name: str) -> str | None:
            value = lookup(name)
            return None if value is None else str(value)

        secret = get("SECRET_KEY")
        if not secret:
            raise ConfigurationError(
                f"set {prefix}SECRET_KEY to a random string of {MIN_SECRET_LENGTH} characters "
                "or more, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        keys = [key.strip() for key in secret.split(",") if key.strip()]
        if any(len(key) < MIN_SECRET_LENGTH for key in keys):
            raise ConfigurationError(
                f"{prefix}SECRET_KEY is too short: use {MIN_SECRET_LENGTH} characters or more"
            )
        options: dict[str, Any] = {"secret_key": keys}
        if (value := get("STORE_URL")) is not None:
            options["store_url"] = value
        if (value := get("MAX_AGE")) is not None:
            options["max_age"] = _seconds("MAX_AGE", value, allow_none=True)
        if (value := get("IDLE_TIMEOUT")) is not None:
            options["idle_timeout"] = _seconds("IDLE_TIMEOUT", value, allow_none=True)
        if (value := get("SWEEP_INTERVAL")) is not None:
            options["sweep_interval"] = _seconds("SWEEP_INTERVAL", value, allow_none=False)
        if (value := get("COOKIE_NAME")) is not None:
            options["cookie_name"] = value
        if (value := get("HTTPS_ONLY")) is not None:
            options["https_only"] = _boolean("HTTPS_ONLY", value)
        if (value := get("SAME_SITE")) is not None:
            options["same_site"] = value.lower()
        if (value := get("PARTITIONED")) is not None:
            options["partitioned"] = _boolean("PARTITIONED", value)
        if (value := get("DOMAIN")) is not None:
            options["domain"] = value or None
        if (value := get("ON_STORE_ERROR")) is not None:
            options["on_store_error"] = value
        return cls(**options)

    def store(self) -> Store:
        return store_from_url(self.store_url)

    def options(self, store: Store | None = None) -> dict[str, Any]:
        """Keyword arguments for either ``SessionMiddleware`` (ASGI or WSGI)."""
        return {
            "secret_key": self.secret_key,
            "store": store if store is not None else self.store(),
            "session_cookie": self.cookie_name,
            "max_age": self.max_age,
            "https_only": self.https_only,
            "same_site": self.same_site,
            "partitioned": self.partitioned,
            "domain": self.domain,
            "idle_timeout": self.idle_timeout,
            "sweep_interval": self.sweep_interval or None,
            "on_store_error": self.on_store_error,
        }
