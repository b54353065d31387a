"""What the ASGI, WSGI and Flask shells share around their store calls, so that only the
calls themselves (awaited or not) are written more than once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import ConfigurationError, StoreError, report_store_error
from ._session import Session, UnavailableSession

if TYPE_CHECKING:
    from ._core import Exchange
    from .metrics import Metrics
    from .stores import Record

STORE_ERROR_POLICIES = ("503", "empty")


def check_policy(on_store_error: str) -> str:
    if on_store_error not in STORE_ERROR_POLICIES:
        raise ConfigurationError("on_store_error must be '503' or 'empty'")
    return on_store_error


def loaded(exchange: Exchange, record: Record | None, metrics: Metrics) -> Session:
    """Hand the store's answer to the core, counting a session that was found."""
    session = exchange.loaded(record)
    if exchange.session_id is not None:
        metrics.loaded += 1
    return session


def load_failed(
    exchange: Exchange,
    error: StoreError,
    on_store_error: str,
    metrics: Metrics,
    placeholder: type[Session] = UnavailableSession,
) -> Session:
    """The store could not load the session: log once, count, and stand in for it."""
    metrics.store_errors += 1
    proceed = on_store_error == "empty"
    report_store_error(
        error, "serving an empty, unsaved session" if proceed else "answering 503 if used"
    )
    return exchange.unavailable(proceed=proceed, placeholder=placeholder)
