"""Building the middleware from settings: environment variables, ``.env`` files through
Starlette's ``Config``, a pydantic-settings model, Flask's ``app.config`` or any mapping;
and picking a store from a URL (``store_from_url``, from ``lazysession._store_urls``). Each
kind of value has its checker in ``lazysession._setting_checks``.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from . import _defaults
from ._defaults import SAME_SITES, STORE_ERROR_POLICIES, SameSite, StoreErrorPolicy
from ._errors import ConfigurationError
from ._setting_checks import (
    _HOW_TO_MAKE_A_KEY,
    MIN_SECRET_LENGTH,
    _boolean,
    _check_together,
    _choice,
    _cookie_name,
    _domain,
    _seconds,
    _secret_keys,
    _store_url,
    _unwrap,
)
from ._store_urls import _redacted, extra_for, missing_module, store_from_url
from ._store_urls import check_store_url as check_store_url
from .stores import CookieStore, Store

__all__ = [
    "MIN_SECRET_LENGTH",
    "PREFIX",
    "MiddlewareKeywords",
    "Settings",
    "extra_for",
    "store_from_url",
]

logger = logging.getLogger("lazysession")

PREFIX = "LAZYSESSION_"
"""The prefix every setting's name carries."""

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


def _field_label(name: str) -> str:
    return name


def _closest(unknown: str, prefix: str) -> str | None:
    """The setting an unknown name most resembles (a typo's intended name), if any."""
    close = difflib.get_close_matches(unknown[len(prefix) :], NAMES, n=1, cutoff=0.75)
    return prefix + close[0] if close else None


class MiddlewareKeywords(TypedDict):
    """What :meth:`Settings.options` returns: keyword arguments of ``SessionMiddleware``
    (ASGI or WSGI), typed as its signature takes them, so
    ``SessionMiddleware(app, **settings.options())`` type-checks."""

    secret_key: list[str]
    store: Store | CookieStore
    session_cookie: str
    max_age: int | None
    https_only: bool
    same_site: SameSite
    partitioned: bool
    domain: str | None
    idle_timeout: int | None
    sweep_interval: int | None
    on_store_error: StoreErrorPolicy


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
    store_url: str = _defaults.STORE_URL
    """Where sessions live (see :func:`store_from_url`)."""
    max_age: int | None = _defaults.LIFETIME
    """The absolute lifetime in seconds; None for a browser-session cookie."""
    idle_timeout: int | None = None
    """Seconds a session survives unused; None for no idle limit."""
    sweep_interval: int | None = _defaults.SWEEP_INTERVAL
    """Seconds between expiry sweeps; 0 or None disables them."""
    cookie_name: str = _defaults.COOKIE_NAME
    """The session cookie's name (the middleware's ``session_cookie``)."""
    https_only: bool = False
    """Whether the cookie is sent with ``Secure``."""
    same_site: SameSite = _defaults.SAME_SITE
    """``lax``, ``strict`` or ``none`` (``none`` needs ``https_only``)."""
    partitioned: bool = False
    """Whether the cookie is partitioned (CHIPS; needs ``https_only``)."""
    domain: str | None = None
    """The cookie's domain; None for the host that set it."""
    on_store_error: StoreErrorPolicy = _defaults.ON_STORE_ERROR
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
        same_site = _choice("same_site", self.same_site, SAME_SITES)
        if self.same_site != same_site:
            object.__setattr__(self, "same_site", same_site)
        _domain("domain", self.domain)
        _choice("on_store_error", self.on_store_error, STORE_ERROR_POLICIES)
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
            options["same_site"] = _choice(label("same_site"), value, SAME_SITES)
        if (value := get("PARTITIONED")) is not None:
            options["partitioned"] = _boolean(label("partitioned"), value)
        if (value := get("DOMAIN")) is not None:
            options["domain"] = _domain(label("domain"), value)
        if (value := get("ON_STORE_ERROR")) is not None:
            options["on_store_error"] = _choice(
                label("on_store_error"), value, STORE_ERROR_POLICIES
            )
        _check_together(
            label,
            options.get("same_site", _defaults.SAME_SITE),
            options.get("https_only", False),
            options.get("partitioned", False),
        )
        return cls(**options)

    def store(self) -> Store | CookieStore:
        """A new store for ``store_url`` (``cookie://``: the cookie mode's CookieStore).

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

    def options(
        self, store: Store | CookieStore | None = None, *, wsgi: bool = False
    ) -> MiddlewareKeywords:
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
        options: MiddlewareKeywords = {
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


def _check_as_the_middleware_will(options: MiddlewareKeywords, *, wsgi: bool, where: str) -> None:
    """The store checked for the side it will serve, then the middleware built once, with
    no sweep, and thrown away: every check it makes at construction runs now."""
    from ._asgi import SessionMiddleware, check_async_store
    from .wsgi import SessionMiddleware as WSGISessionMiddleware
    from .wsgi import check_sync_store

    store = options["store"]
    try:
        if isinstance(store, CookieStore):
            pass  # the cookie mode: no store to check
        elif wsgi:
            check_sync_store(store)
        else:
            check_async_store(store)
    except ImportError as error:
        raise ConfigurationError(missing_module(error, where)) from None
    except ConfigurationError as error:
        hint = "" if wsgi else " (for lazysession.wsgi, call options(wsgi=True))"
        raise ConfigurationError(f"{where}: {error}{hint}") from None
    checked: MiddlewareKeywords = {**options, "sweep_interval": None}
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
