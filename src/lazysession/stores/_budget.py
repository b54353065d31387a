"""The store time one request has (:class:`StoreBudget`): the one place that knows it, read
by the bounded calls of ``_limits`` and spent by the shells around their own store calls."""

from __future__ import annotations

import contextvars


class StoreBudget:
    """The store time one request has: the middleware's calls for a request (the load,
    then the save) share one store ``timeout`` between them instead of having one each,
    so a request waits on a slow store at most ``timeout`` in all (a write already sent
    still gets its grace, :data:`GRACE_SHARE`). The first call sets the budget to its
    store's timeout; each call takes what the calls before it left. Calls an application
    makes itself, and the sweeper's, are outside any budget: one ``timeout`` each.

    ``with budget.spending():`` around the middleware's own store calls."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left: float | None = None

    def spending(self) -> _Spending:
        return _Spending(self)

    def allow(self, seconds: float) -> float:
        """Seconds a call whose store allows ``seconds`` may take now."""
        if self.left is None:
            self.left = seconds
            return seconds
        return min(seconds, self.left)

    def spent(self, seconds: float) -> None:
        if self.left is not None:
            self.left = max(0.0, self.left - seconds)


class _Spending:
    __slots__ = ("_budget", "_token")

    def __init__(self, budget: StoreBudget) -> None:
        self._budget = budget

    def __enter__(self) -> None:
        self._token = BUDGET.set(self._budget)

    def __exit__(self, *_: object) -> None:
        BUDGET.reset(self._token)


BUDGET: contextvars.ContextVar[StoreBudget | None] = contextvars.ContextVar(
    "lazysession_budget", default=None
)
