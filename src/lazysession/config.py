"""Building the middleware from settings: environment variables, ``.env`` files through
Starlette's ``Config``, a pydantic-settings model, Flask's ``app.config`` or any mapping;
and picking a store from a URL.

One set of names, each with the ``LAZYSESSION_`` prefix:

==========================  =================================================================
``SECRET_KEY``              required; 32 characters or more. A comma-separated list rotates.
                            Unset, a mapping's own ``SECRET_KEY`` (Flask's) is used.
``STORE_URL``               ``cookie://`` (default), ``memory://``, ``redis://...``,
                            ``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``, ...
``MAX_AGE``                 seconds (absolute lifetime), ``none`` for a browser session
``IDLE_TIMEOUT``            seconds, or unset
``SWEEP_INTERVAL``          seconds; ``0`` or ``none`` disables the sweep
``COOKIE_NAME``             default ``session``
``HTTPS_ONLY``              ``true``/``false``
``SAME_SITE``               ``lax`` (default), ``strict``, ``none``
``PARTITIONED``             ``true``/``false``: a CHIPS cookie, for an app embedded cross-site
``DOMAIN``                  cookie domain, or unset
``ON_STORE_ERROR``          ``503`` (default) or ``empty``
==========================  =================================================================

Rules:
- Every value is checked when it is read, and a bad one raises
  :class:`~lazysession.ConfigurationError` naming the variable (``LAZYSESSION_MAX_AGE``),
  so an app that reads its settings at import refuses to start, in one line.
- A ``LAZYSESSION_*`` name that is not one of the above is reported (a warning on the
  ``lazysession`` logger, with the name it most resembles) and otherwise ignored.
- :meth:`Settings.options` checks the options as the middleware will, when it is called:
  Starlette builds its middleware only at the first lifespan event or request, where an
  error is easily lost (uvicorn reports it as "ASGI 'lifespan' protocol appears
  unsupported" and answers 500 from then on).
- Secret keys never appear in a ``repr``.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ._errors import ConfigurationError
from .stores import CookieStore, MemoryStore, Store

__all__ = ["MIN_SECRET_LENGTH", "PREFIX", "Settings", "extra_for", "store_from_url"]

logger = logging.getLogger("lazysession")

PREFIX = "LAZYSESSION_"
"""The prefix every setting's name carries."""

MIN_SECRET_LENGTH = 32
"""The fewest characters a secret key may have."""

NAMES = (
    "SECRET_KEY",
    "STORE_URL",
    "MAX_AGE",
    "IDLE_TIMEOUT",
    "SWEEP_INTERVAL",
    "COOKIE_NAME",
    "HTTPS_ONLY",
    "SAME_SITE",
    "PARTITIONED",
    "DOMAIN",
    "ON_STORE_ERROR",
)
"""Every setting's name, without the prefix."""

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

_EXTRAS = {
    "sqlalchemy": "sqlalchemy",
    "aiosqlite": "sqlalchemy",
    "greenlet": "sqlalchemy",
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "asyncmy": "mysql",
    "aiomysql": "mysql",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "redis": "redis",
    "prometheus_client": "prometheus",
    "opentelemetry": "opentelemetry",
}


def extra_for(error: ImportError) -> str | None:
    """The extra (``pip install 'lazysession[EXTRA]'``) that brings the module an
    ``ImportError`` is about, or None when it is not one of lazysession's."""
    name = (error.name or "").split(".")[0]
    return _EXTRAS.get(name)


def missing_module(error: ImportError, needed_by: str) -> str:
    """One line for a missing optional module: what needs it and what to install."""
    name = (error.name or str(error)).split(".")[0]
    extra = extra_for(error)
    if name == "MySQLdb":
        return (
            f"{needed_by} needs the mysqlclient driver, which is not installed: use "
            "mysql+asyncmy:// (ASGI) or mysql+pymysql:// (WSGI) after "
            "pip install 'lazysession[mysql]'"
        )
    if name == "psycopg2":
        return (
            f"{needed_by} needs psycopg2, which is not installed: use postgresql+asyncpg:// "
            "(ASGI) or postgresql+psycopg:// (both) after pip install 'lazysession[postgresql]'"
        )
    install = f"pip install 'lazysession[{extra}]'" if extra else f"pip install {name}"
    return f"{needed_by} needs {name}, which is not installed: {install}"


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _check_redis_url(url: str) -> None:
    """redis-py reads ``redis://host/abc`` as database 0; refuse what it would misread."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        return
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigurationError(f"{_redacted(url)}: the port is not a number") from None
    database = unquote(parts.path).strip("/")
    if database and not database.isdigit():
        raise ConfigurationError(
            f"{_redacted(url)}: the database {database!r} is not a number (redis://host:6379/0)"
        )


def _redacted(url: str) -> str:
    """The URL with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def check_store_url(url: str) -> str:
    """``url`` if it names a store lazysession can build; a ``ConfigurationError``
    otherwise. Nothing is imported or connected."""
    scheme = _scheme(url)
    if scheme in ("cookie", "memory"):
        return url
    if scheme in _REDIS_SCHEMES:
        _check_redis_url(url)
        return url
    if scheme.split("+")[0] in _SQL_SCHEMES:
        return url
    raise ConfigurationError(
        f"cannot tell which store {_redacted(url)!r} names: use cookie://, memory://, "
        "redis://..., or a database URL such as sqlite+aiosqlite:///sessions.db"
    )


def store_from_url(url: str, **options: Any) -> Store:
    """The store a URL names: ``cookie://``, ``memory://``, ``redis://`` (``rediss://``,
    ``unix://``, ``redis+cluster://``), or any SQLAlchemy URL. ``options`` go to the
    store's constructor.

    Raises:
        ConfigurationError: the URL names no store, or a malformed one.
        ImportError: the store's optional dependency is not installed (the message
            names the extra to install).
    """
    scheme = _scheme(check_store_url(url))
    if scheme == "cookie":
        return CookieStore(**options)
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme in _REDIS_SCHEMES:
        from .stores import RedisStore

        if scheme == "redis+cluster":
            return RedisStore("redis" + url[len("redis+cluster") :], cluster=True, **options)
        return RedisStore(url, **options)
    from .stores import SQLAlchemyStore

    return SQLAlchemyStore(url, **options)


def _unwrap(value: Any) -> Any:
    """The value behind a pydantic ``SecretStr`` (its ``str()`` is asterisks)."""
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


# -- one checker per kind of value: (label, value) -> the value, typed -------------------
# Each takes what a mapping may hold (text from the environment, or a typed value from a
# dict or Flask's config) and names ``label`` in its error.


def _boolean(label: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{label}={value!r}: expected true or false")


def _seconds(
    label: str, value: object, *, allow_none: bool, allow_zero: bool = False
) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if allow_none:
            return None
        raise ConfigurationError(f"{label} is empty: expected a number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{label}={value!r}: expected a whole number of seconds")
    try:
        seconds = int(value)
    except ValueError:
        raise ConfigurationError(
            f"{label}={value!r}: expected a whole number of seconds"
            + (", or none" if allow_none else "")
        ) from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise ConfigurationError(f"{label}={value!r}: expected {least} seconds")
    return seconds


def _choice(label: str, value: object, choices: tuple[str, ...]) -> str:
    lowered = str(value).strip().lower()
    if lowered not in choices:
        expected = ", ".join(choices[:-1]) + " or " + choices[-1]
        raise ConfigurationError(f"{label}={value!r}: expected {expected}")
    return lowered


def _cookie_name(label: str, value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise ConfigurationError(
            f"{label}={value!r}: a cookie name is letters, digits and !#$%&'*+-.^_`|~"
        )
    return value


def _domain(label: str, value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if any(c in text for c in ";,\r\n \t"):
        raise ConfigurationError(f"{label}={value!r}: expected a host name such as example.com")
    return text or None


def _store_url(label: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{label} is empty: expected a store URL such as memory://")
    try:
        return check_store_url(value.strip())
    except ConfigurationError as error:
        raise ConfigurationError(f"{label}: {error}") from None


def _secret_keys(label: str, value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        keys = [str(_unwrap(key)).strip() for key in value]
    else:
        keys = [key.strip() for key in str(value).split(",")]
    keys = [key for key in keys if key]
    if not keys:
        raise ConfigurationError(f"{label} is empty: {_HOW_TO_MAKE_A_KEY}")
    if any(len(key) < MIN_SECRET_LENGTH for key in keys):
        raise ConfigurationError(f"{label} is too short: use {_HOW_TO_MAKE_A_KEY}")
    return keys


_HOW_TO_MAKE_A_KEY = (
    f"a random string of {MIN_SECRET_LENGTH} characters or more, e.g. from "
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


def _check_together(
    label: Callable[[str], str], same_site: str, https_only: bool, partitioned: bool
) -> None:
    """Combinations browsers refuse: they drop the cookie without a word."""
    if same_site == "none" and not https_only:
        raise ConfigurationError(
            f"{label('same_site')}=none needs {label('https_only')}=true: browsers refuse a "
            "SameSite=None cookie without Secure"
        )
    if partitioned and not https_only:
        raise ConfigurationError(
            f"{label('partitioned')}=true needs {label('https_only')}=true: browsers refuse a "
            "partitioned cookie without Secure"
        )


def _field_label(name: str) -> str:
    return name


def _closest(unknown: str, prefix: str) -> str | None:
    """The setting an unknown name most resembles (a typo's intended name), if any."""
    close = difflib.get_close_matches(unknown[len(prefix) :], NAMES, n=1, cutoff=0.75)
    return prefix + close[0] if close else None


@dataclass(frozen=True)
class Settings:
    """The middleware's settings, each checked when it is read or given; ``options()``
    are the middleware's keyword arguments.

    Build it with :meth:`from_mapping` (``os.environ``, Flask's ``app.config``, a dict),
    :meth:`from_starlette_config` or :meth:`from_model`, or directly. A bad value raises
    :class:`~lazysession.ConfigurationError` naming the variable or field.
    """

    secret_key: list[str] = field(repr=False)
    """The keys; the first signs, every one verifies (rotation)."""
    store_url: str = "cookie://"
    """Where sessions live (see :func:`store_from_url`)."""
    max_age: int | None = 14 * 24 * 60 * 60
    """The absolute lifetime in seconds; None for a browser-session cookie."""
    idle_timeout: int | None = None
    """Seconds a session survives unused; None for no idle limit."""
    sweep_interval: int | None = 300
    """Seconds between expiry sweeps; 0 or None disables them."""
    cookie_name: str = "session"
    """The session cookie's name."""
    https_only: bool = False
    """Whether the cookie is sent with ``Secure``."""
    same_site: str = "lax"
    """``lax``, ``strict`` or ``none`` (``none`` needs ``https_only``)."""
    partitioned: bool = False
    """Whether the cookie is partitioned (CHIPS; needs ``https_only``)."""
    domain: str | None = None
    """The cookie's domain; None for the host that set it."""
    on_store_error: str = "503"
    """``503``, or ``empty`` to serve an empty, unsaved session when the store fails."""

    def __post_init__(self) -> None:
        """Check every field, naming the field in the error."""
        object.__setattr__(self, "secret_key", _secret_keys("secret_key", self.secret_key))
        _store_url("store_url", self.store_url)
        _seconds("max_age", self.max_age, allow_none=True)
        _seconds("idle_timeout", self.idle_timeout, allow_none=True)
        _seconds("sweep_interval", self.sweep_interval, allow_none=True, allow_zero=True)
        _cookie_name("cookie_name", self.cookie_name)
        for name in ("https_only", "partitioned"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name}={getattr(self, name)!r}: expected True or False")
        _choice("same_site", self.same_site, ("lax", "strict", "none"))
        if self.same_site != self.same_site.lower():
            object.__setattr__(self, "same_site", self.same_site.lower())
        _domain("domain", self.domain)
        _choice("on_store_error", self.on_store_error, ("503", "empty"))
        _check_together(_field_label, self.same_site, self.https_only, self.partitioned)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = PREFIX) -> Settings:
        """Read ``LAZYSESSION_*`` names from a mapping: ``os.environ``, a dict, Flask's
        ``app.config``, a pydantic model's ``model_dump()`` with upper-case keys.

        Without ``LAZYSESSION_SECRET_KEY``, the mapping's own ``SECRET_KEY`` is used (with
        ``SECRET_KEY_FALLBACKS`` as retired keys), so ``Settings.from_mapping(app.config)``
        signs with the key a Flask app already has.
        """
        _report_unknown(values.keys(), prefix)

        def lookup(name: str) -> Any:
            return values.get(prefix + name)

        fallback: tuple[str, Any] | None = None
        if lookup("SECRET_KEY") is None and values.get("SECRET_KEY"):
            retired = values.get("SECRET_KEY_FALLBACKS") or []
            fallback = ("SECRET_KEY", [values["SECRET_KEY"], *retired])
        return cls.from_lookup(lookup, prefix, _secret_fallback=fallback, _known=values.keys())

    @classmethod
    def from_model(cls, model: Any, prefix: str = PREFIX) -> Settings:
        """Read a pydantic(-settings) model whose fields are named ``lazysession_*``;
        ``SecretStr`` values are unwrapped."""
        values = {name.upper(): _unwrap(value) for name, value in model.model_dump().items()}
        return cls.from_mapping(values, prefix)

    @classmethod
    def from_starlette_config(cls, config: Callable[..., Any]) -> Settings:
        """Read through Starlette's ``Config`` (the environment, then a ``.env`` file)."""
        known: list[str] = [
            *getattr(config, "file_values", {}),
            *getattr(config, "environ", {}),
        ]
        _report_unknown(known, PREFIX)
        return cls.from_lookup(lambda name: config(PREFIX + name, default=None), _known=known)

    @classmethod
    def from_lookup(
        cls,
        lookup: Callable[[str], Any],
        prefix: str = PREFIX,
        *,
        _secret_fallback: tuple[str, Any] | None = None,
        _known: Iterable[str] = (),
    ) -> Settings:
        """Read each setting through ``lookup(name)`` (``name`` without the prefix; None
        for unset), checking each value as it is read."""

        def label(name: str) -> str:
            return f"{prefix}{name.upper()}"

        def get(name: str) -> Any:
            return _unwrap(lookup(name))

        secret = get("SECRET_KEY")
        secret_label = label("secret_key")
        if secret is None and _secret_fallback is not None:
            secret_label, secret = _secret_fallback
        if secret is None or secret == "":
            typos = [name for name in _known if _closest(name, prefix) == secret_label != name]
            typo = f" ({typos[0]} is set: a typo?)" if typos else ""
            raise ConfigurationError(f"set {secret_label} to {_HOW_TO_MAKE_A_KEY}{typo}")
        options: dict[str, Any] = {"secret_key": _secret_keys(secret_label, secret)}
        if (value := get("STORE_URL")) is not None:
            options["store_url"] = _store_url(label("store_url"), value)
        if (value := get("MAX_AGE")) is not None:
            options["max_age"] = _seconds(label("max_age"), value, allow_none=True)
        if (value := get("IDLE_TIMEOUT")) is not None:
            options["idle_timeout"] = _seconds(label("idle_timeout"), value, allow_none=True)
        if (value := get("SWEEP_INTERVAL")) is not None:
            interval = _seconds(label("sweep_interval"), value, allow_none=True, allow_zero=True)
            options["sweep_interval"] = interval or 0
        if (value := get("COOKIE_NAME")) is not None:
            options["cookie_name"] = _cookie_name(label("cookie_name"), value)
        if (value := get("HTTPS_ONLY")) is not None:
            options["https_only"] = _boolean(label("https_only"), value)
        if (value := get("SAME_SITE")) is not None:
            options["same_site"] = _choice(label("same_site"), value, ("lax", "strict", "none"))
        if (value := get("PARTITIONED")) is not None:
            options["partitioned"] = _boolean(label("partitioned"), value)
        if (value := get("DOMAIN")) is not None:
            options["domain"] = _domain(label("domain"), value)
        if (value := get("ON_STORE_ERROR")) is not None:
            options["on_store_error"] = _choice(label("on_store_error"), value, ("503", "empty"))
        _check_together(
            label,
            options.get("same_site", "lax"),
            options.get("https_only", False),
            options.get("partitioned", False),
        )
        return cls(**options)

    def store(self) -> Store:
        """A new store for ``store_url``.

        Raises:
            ConfigurationError: naming ``LAZYSESSION_STORE_URL`` when the store cannot be
                built, its driver or extra included.
        """
        try:
            return store_from_url(self.store_url)
        except ImportError as error:
            raise ConfigurationError(
                missing_module(error, f"{PREFIX}STORE_URL={_redacted(self.store_url)!r}")
            ) from None
        except ConfigurationError as error:
            raise ConfigurationError(f"{PREFIX}STORE_URL: {error}") from None

    def options(self, store: Store | None = None, *, wsgi: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``SessionMiddleware``: the ASGI one, or with ``wsgi=True``
        ``lazysession.wsgi.SessionMiddleware``. ``store`` replaces the one ``store_url``
        names.

        The options are checked here as that middleware will check them, store driver
        included, so a mistake stops the app when its module is imported rather than
        when Starlette builds its middleware (at the first lifespan event, where uvicorn
        only says "ASGI 'lifespan' protocol appears unsupported").

        Raises:
            ConfigurationError: one line naming what to change.
        """
        options = {
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
        where = f"{PREFIX}STORE_URL={_redacted(self.store_url)!r}" if store is None else "store"
        _check_as_the_middleware_will(options, wsgi=wsgi, where=where)
        return options


def _check_as_the_middleware_will(options: dict[str, Any], *, wsgi: bool, where: str) -> None:
    """The store checked for the side it will serve, then the middleware built once, with
    no sweep, and thrown away: every check it makes at construction runs now."""
    from ._asgi import SessionMiddleware, check_async_store
    from .wsgi import SessionMiddleware as WSGISessionMiddleware
    from .wsgi import check_sync_store

    try:
        if wsgi:
            check_sync_store(options["store"])
        else:
            check_async_store(options["store"])
    except ImportError as error:
        raise ConfigurationError(missing_module(error, where)) from None
    except ConfigurationError as error:
        hint = "" if wsgi else " (for lazysession.wsgi, call options(wsgi=True))"
        raise ConfigurationError(f"{where}: {error}{hint}") from None
    checked = {**options, "sweep_interval": None}
    if wsgi:
        WSGISessionMiddleware(_no_app, **checked)
    else:
        SessionMiddleware(_no_app, **checked)


def _no_app(*args: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError("the middleware built to check the options is never called")


def _report_unknown(names: Iterable[str], prefix: str) -> None:
    for name in names:
        if isinstance(name, str) and name.startswith(prefix) and name[len(prefix) :] not in NAMES:
            logger.warning(
                "lazysession: %s is not a lazysession setting%s; it is ignored",
                name,
                f" (did you mean {close}?)" if (close := _closest(name, prefix)) else "",
            )
