"""The options every shell takes (the ASGI and WSGI middlewares, Flask's interface), each
written once here: its type, its default and what it means, and how it is checked and
handed to the shell core.

Rules:
- Each shell's constructor lists these options as typed keyword parameters of its own
  (for its users and for mypy), with the types and defaults of :class:`ShellOptions`
  (``tests/test_shell_options.py`` holds them to it), and hands them over in one line:
  ``set_up(self, locals(), secure_cookie=...)``. An option only one shell takes (the
  cookie's, ``max_age``, ``max_size``) is that shell's own.
- They are checked before anything is built from them (a store URL builds a store); a
  bad value is a :class:`~lazysession.ConfigurationError` naming the option
  (``_options``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from . import _defaults
from ._defaults import StoreErrorPolicy
from ._expiry import Clock, utc_now
from ._identity import SessionEvent
from ._options import encrypt_option, fraction_option, seconds_option
from ._request import SkipPredicate, is_bearer_request
from .metrics import Metrics

if TYPE_CHECKING:
    from ._shell import Shell
    from .stores import CookieStore, Store


@dataclass(frozen=True, slots=True)
class ShellOptions:
    """The options every shell takes, as its constructor was given them."""

    store: Store | CookieStore | str | None = None
    """Where sessions live: a store, a store URL (``"redis://..."``), or None for the
    cookie itself."""
    skip_persistence: SkipPredicate = is_bearer_request
    """Requests whose session is never stored nor set as a cookie (by default, those
    with a Bearer token)."""
    idle_timeout: int | timedelta | None = None
    """How long a session survives unused (None: no idle limit)."""
    touch_after: float = _defaults.TOUCH_AFTER
    """Under ``idle_timeout``, the share of the idle window that must pass before a read
    moves the expiry."""
    on_store_error: StoreErrorPolicy = _defaults.ON_STORE_ERROR
    """What a request gets when the store fails: a 503, or an empty session never saved."""
    sweep_interval: float | timedelta | None = _defaults.SWEEP_INTERVAL
    """Seconds between sweeps of a server-side store's expired sessions (None: none)."""
    metrics: Metrics | None = None
    """Where the shell counts what it does (a fresh :class:`~lazysession.Metrics` if None)."""
    encrypt: bool = False
    """Encrypt what is stored (needs the ``encryption`` extra)."""
    private_reads: bool = True
    """A response that read the session gets ``Cache-Control: private`` (False: only
    ``Vary: Cookie``)."""
    record_device: bool = False
    """At a login that names an owner, keep a short label of the device, read from the
    ``User-Agent``."""
    max_sessions_per_owner: int | None = None
    """After a login, the owner's least recently seen other sessions past this number are
    revoked (a server-side store only)."""
    on_event: Callable[[SessionEvent], object] | None = None
    """Hears what happened to sessions (created, logged in, ended, swept)."""
    clock: Clock = utc_now
    """The time, for expiry (tests move it by hand)."""


NAMES: tuple[str, ...] = tuple(field.name for field in fields(ShellOptions))


class Checked(TypedDict):
    """The shared options a shell builds its rules from, checked: keyword arguments of
    ``SessionRules.from_options``."""

    idle_timeout: int | None
    touch_after: float
    encrypt: bool
    clock: Clock


def set_up(shell: Shell, given: Mapping[str, Any], *, secure_cookie: bool) -> Checked:
    """Check the shared options among ``given`` (the constructor's ``locals()``), keep
    what the shell core keeps of them (``Shell._set_up``; ``secure_cookie``: whether the
    cookie is sent over HTTPS only), and return the rest, checked."""
    options = ShellOptions(**{name: given[name] for name in NAMES})
    idle = seconds_option("idle_timeout", options.idle_timeout)
    touch = fraction_option("touch_after", options.touch_after)
    encrypt = encrypt_option(options.encrypt)
    shell._set_up(
        store=options.store,
        on_store_error=options.on_store_error,
        skip_persistence=options.skip_persistence,
        private_reads=options.private_reads,
        sweep_interval=options.sweep_interval,
        metrics=options.metrics,
        secure_cookie=secure_cookie,
        record_device=options.record_device,
        max_sessions_per_owner=options.max_sessions_per_owner,
        on_event=options.on_event,
    )
    return Checked(idle_timeout=idle, touch_after=touch, encrypt=encrypt, clock=options.clock)
