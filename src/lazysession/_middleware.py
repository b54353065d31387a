"""The options the ASGI and WSGI middlewares take, Starlette's first (with its names and
defaults), checked once when the middleware is built (``_options`` says how). Those
every shell takes are ``_shell_options``' (their types, defaults and meaning there)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _defaults
from ._cookies import CookieSettings
from ._core import SessionRules
from ._defaults import SameSite, StoreErrorPolicy
from ._errors import ConfigurationError
from ._expiry import Clock, utc_now
from ._identity import SessionEvent
from ._options import seconds_option, size_option
from ._request import SkipPredicate, is_bearer_request
from ._shell import Shell
from ._shell_options import set_up
from .metrics import Metrics

if TYPE_CHECKING:
    from .stores import CookieStore, Store

App = TypeVar("App")

_MISSING: Any = object()


class MiddlewareOptions(Shell, Generic[App]):
    """The options the ASGI and WSGI middlewares take, with Starlette's names and defaults
    first, and what they build from them."""

    def __init__(
        self,
        app: App,
        secret_key: object = _MISSING,
        session_cookie: str = _defaults.COOKIE_NAME,
        max_age: int | timedelta | None = _defaults.LIFETIME,
        path: str = "/",
        same_site: SameSite = _defaults.SAME_SITE,
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        store: Store | CookieStore | str | None = None,
        skip_persistence: SkipPredicate = is_bearer_request,
        idle_timeout: int | timedelta | None = None,
        touch_after: float = _defaults.TOUCH_AFTER,
        max_size: int = _defaults.MAX_SIZE,
        on_store_error: StoreErrorPolicy = _defaults.ON_STORE_ERROR,
        sweep_interval: float | timedelta | None = _defaults.SWEEP_INTERVAL,
        metrics: Metrics | None = None,
        encrypt: bool = False,
        private_reads: bool = True,
        record_device: bool = False,
        max_sessions_per_owner: int | None = None,
        on_event: Callable[[SessionEvent], object] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        try:
            shell = type(self).__name__
            if secret_key is _MISSING or secret_key is None:
                raise ConfigurationError(
                    f"{shell} needs secret_key=...: a long random string, e.g. from "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
            lifetime = seconds_option("max_age", max_age, positive=False)
            size = size_option("max_size", max_size)
            self.app = app
            shared = set_up(self, locals(), secure_cookie=https_only)
            self.rules = SessionRules.from_options(
                secret_key=secret_key,
                store=self.store,
                cookie=CookieSettings(
                    name=session_cookie,
                    path=path,
                    domain=domain,
                    max_age=lifetime,
                    same_site=same_site,
                    secure=https_only,
                    partitioned=partitioned,
                ),
                max_size=size,
                record_device=self.record_device,
                max_sessions_per_owner=self.max_sessions_per_owner,
                **shared,
            )
        except ConfigurationError as error:
            if not self._refused(app, error):
                raise
            return
        self._start_sweeping()
