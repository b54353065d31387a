"""The pytest plugin ``scripts/compat.py`` loads into the frameworks' own test runs.

It does what a user's ``conftest.py`` would do to run an app's tests on lazysession,
and nothing else: it chooses the store, and leaves every test unchanged.

- ``LAZYSESSION_COMPAT_STORE``: ``stock`` (the framework's own sessions: nothing is
  injected), ``cookie`` (lazysession's default), ``memory``, ``sqlite``,
  ``sqlite-threads`` (``inline=False``: no SQLite call on the event loop) or ``redis``.
  Starlette: every ``lazysession.SessionMiddleware`` built without ``store=`` gets a
  fresh store of that kind. Flask: every app whose class does not bring its own session
  interface gets ``LazySessionInterface(store=<a fresh store>)``, as
  ``app.session_interface = ...`` would.
- ``LAZYSESSION_COMPAT_SUITE``: ``flask`` also keeps only Flask's session tests.
- ``LAZYSESSION_COMPAT_TOOLS``: a folder of test tools, appended to ``sys.path``.

Each test's stores are closed, their SQLite files and Redis keys removed, when it ends.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STORE = os.environ.get("LAZYSESSION_COMPAT_STORE", "cookie")
SUITE = os.environ.get("LAZYSESSION_COMPAT_SUITE", "starlette")
REDIS_URL = os.environ.get("LAZYSESSION_TEST_REDIS", "redis://127.0.0.1:6379/0")
_tools = os.environ.get("LAZYSESSION_COMPAT_TOOLS")
if _tools:
    sys.path.append(_tools)

FLASK_WHOLE_FILES = {"test_reqctx.py", "test_testing.py"}
"""Flask test files kept whole; from the others, tests about sessions and flashing."""
FLASK_WORDS = ("session", "flash")
FLASK_ALSO = {"test_standard_context"}
"""Flask tests that use the session without saying so in their name."""


class Stores:
    """The stores made for the running test, and how to clean each up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: list[Any] = []

    def new(self, *, sync: bool) -> Any:
        """A fresh store of the chosen kind (None: the cookie store)."""
        if STORE in ("stock", "cookie"):
            return None
        if STORE == "memory":
            from lazysession import MemoryStore

            store: Any = MemoryStore()
        elif STORE in ("sqlite", "sqlite-threads"):
            from lazysession import SQLAlchemyStore

            driver = "sqlite" if sync else "sqlite+aiosqlite"
            path = self.folder / f"sessions-{len(self.made)}.db"
            store = SQLAlchemyStore(f"{driver}:///{path}", inline=STORE == "sqlite")
        elif STORE == "redis":
            from lazysession import RedisStore

            store = RedisStore(REDIS_URL, prefix=f"lazysession-compat:{uuid.uuid4().hex[:12]}:")
        else:
            raise pytest.UsageError(f"LAZYSESSION_COMPAT_STORE={STORE!r} is not a store")
        self.made.append(store)
        return store

    def close(self) -> None:
        for store in self.made:
            if STORE == "redis":
                import redis

                client = redis.Redis.from_url(REDIS_URL)
                for key in list(client.scan_iter(match=store.prefix + "*")):
                    client.delete(key)
                client.close()
            store.sync.close()
            if SUITE == "starlette":
                import anyio

                anyio.run(store.aclose)


_current: Stores | None = None


@pytest.fixture(autouse=True)
def _lazysession_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    global _current
    stores = _current = Stores(tmp_path_factory.mktemp("stores"))
    undo: list[Any] = []
    if SUITE == "flask" and STORE != "stock":
        import flask

        from lazysession.flask import LazySessionInterface

        interface = LazySessionInterface(store=stores.new(sync=True))
        original = flask.Flask.__dict__["session_interface"]
        flask.Flask.session_interface = interface
        undo.append(lambda: setattr(flask.Flask, "session_interface", original))
        undo.append(interface.close)
    try:
        yield stores
    finally:
        for step in undo:
            step()
        _current = None
        stores.close()


def _inject_store() -> None:
    """Every ``lazysession.SessionMiddleware`` built without ``store=`` gets one."""
    import lazysession

    middleware = lazysession.SessionMiddleware
    original = middleware.__init__
    if STORE.startswith("sqlite"):  # imported before any event loop runs, as an app's would
        from lazysession import SQLAlchemyStore  # noqa: F401

    def with_store(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("store") is None and _current is not None:
            kwargs["store"] = _current.new(sync=False)
        original(self, *args, **kwargs)

    middleware.__init__ = with_store  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if SUITE == "starlette" and STORE != "stock":
        _inject_store()
    else:
        # Flask's conftest reads ``_pytest.monkeypatch.notset``, which later pytest
        # releases keep only as ``_pytest.compat.NOTSET``: the same object, restored.
        from _pytest import compat, monkeypatch

        if not hasattr(monkeypatch, "notset"):
            monkeypatch.notset = compat.NOTSET  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SUITE != "flask":
        return
    kept, dropped = [], []
    for item in items:
        name = item.name.lower()
        whole = item.path.name in FLASK_WHOLE_FILES
        if whole or any(word in name for word in FLASK_WORDS) or item.name in FLASK_ALSO:
            kept.append(item)
        else:
            dropped.append(item)
    items[:] = kept
    config.hook.pytest_deselected(items=dropped)
