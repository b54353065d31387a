"""Store work as *steps*, the two executors that run them, and the refusals a shell
answers with instead of the app's response.

Rules:
- Steps are a generator that yields store calls (a method's name and arguments) and gets
  each answer sent back in, or the call's :class:`StoreError` thrown in; ``run``
  (blocking) and ``run_async`` are the only code that differs between the two sides.
- A refusal (:data:`UNAVAILABLE`, a 503 with ``Retry-After``; :data:`INTERRUPTED`, a
  409) has the same status, headers and body on every shell.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._core import Call, Outcome, store_calls
from ._errors import INTERRUPTED_BODY, UNAVAILABLE_BODY, StoreError
from .metrics import Metrics

if TYPE_CHECKING:
    from .stores import Store, SyncStore

R = TypeVar("R")
Steps = Generator[Call, Any, R]
"""Store work: yields store calls, gets their answers (or errors) back, returns an ``R``."""


@dataclass(frozen=True)
class Refusal:
    """A response the middleware answers with instead of the app's, whose headers have
    not left yet: every shell sends the same status, headers and body."""

    status: int
    reason: str
    body: bytes
    retry_after: str | None = None

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(self.body))),
        ]
        if self.retry_after is not None:
            headers.append(("Retry-After", self.retry_after))
        return headers


UNAVAILABLE = Refusal(503, "Service Unavailable", UNAVAILABLE_BODY, retry_after="5")
"""The store failed: nothing was saved, try again shortly."""
INTERRUPTED = Refusal(409, "Conflict", INTERRUPTED_BODY)
"""The session ended or moved while the request ran: its changes were not saved."""


# -- the executors: the only code that differs between the sides -------------------------


def _no_store(name: str) -> RuntimeError:
    return RuntimeError(f"store call {name!r} in cookie mode, which has no store")


def run(steps: Steps[R], store: SyncStore | None) -> R:
    """Make the store calls of ``steps`` on a store's blocking side (None: the cookie
    mode, whose steps make none)."""
    try:
        name, args, kwargs = next(steps)
        if store is None:
            raise _no_store(name)
        while True:
            try:
                answer = getattr(store, name)(*args, **kwargs)
            except StoreError as error:
                name, args, kwargs = steps.throw(error)
            else:
                name, args, kwargs = steps.send(answer)
    except StopIteration as done:
        result: R = done.value
        return result


async def run_async(steps: Steps[R], store: Store | None) -> R:
    """Await the store calls of ``steps`` (None: the cookie mode, whose steps make none)."""
    try:
        name, args, kwargs = next(steps)
        if store is None:
            raise _no_store(name)
        while True:
            try:
                answer = await getattr(store, name)(*args, **kwargs)
            except StoreError as error:
                name, args, kwargs = steps.throw(error)
            else:
                name, args, kwargs = steps.send(answer)
    except StopIteration as done:
        result: R = done.value
        return result


def _no_store_work(outcome: Outcome) -> bool:
    return (
        not outcome.interrupted
        and outcome.delete is None
        and outcome.write is None
        and outcome.rotate is None
        and outcome.touch is None
    )


def outcome_steps(outcome: Outcome, metrics: Metrics) -> Steps[str | None]:
    """The store calls of ``outcome``, counted; the ``Set-Cookie`` value to send, if any."""
    if _no_store_work(outcome):
        metrics.skipped += outcome.skipped
        return outcome.set_cookie
    cookie: str | None = yield from store_calls(outcome, metrics)
    return cookie


def carry_out(store: SyncStore, outcome: Outcome, metrics: Metrics) -> str | None:
    """Make the store calls of ``outcome``; the ``Set-Cookie`` value to send, if any."""
    return run(outcome_steps(outcome, metrics), store)
