"""A raw WSGI app covering what the session layer must handle, and a call recorder."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from lazysession import Changes, Store, SyncStore
from lazysession.stores import Merge, Record
from lazysession.wsgi import get_session

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment as Environ

JSON = [("Content-Type", "application/json")]


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/untouched":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    session = get_session(environ)
    if path == "/write":
        session.update(parse_qsl(environ.get("QUERY_STRING", "")))
    elif path == "/clear":
        session.clear()
    elif path == "/fail":
        session["half"] = "done"
        start_response("500 Internal Server Error", JSON)
        return [b"{}"]
    elif path == "/stream":
        session["streamed"] = "yes"
        return _stream(start_response)
    elif path == "/late-error":
        session["late"] = "yes"
        start_response("200 OK", JSON)
        try:
            raise RuntimeError("failed before the body")
        except RuntimeError:
            start_response("500 Internal Server Error", JSON, sys.exc_info())
        return [b"{}"]
    elif path == "/legacy-write":
        session["legacy"] = "yes"
        write = start_response("200 OK", JSON)
        write(b"{}")
        return []
    start_response("200 OK", [*JSON, ("Vary", "Accept-Encoding")])
    return [json.dumps(dict(session)).encode()]


def _stream(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one "
    yield b"two"


class Recorder(SyncStore):
    """Counts the calls the WSGI middleware makes to a store's sync side."""

    def __init__(self, inner: SyncStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def read(self, session_id: str) -> Record | None:
        self.calls["load"] += 1
        return self.inner.read(session_id)

    def touch(self, session_id: str, *, expires_at: datetime) -> bool:
        self.calls["touch"] += 1
        return self.inner.touch(session_id, expires_at=expires_at)

    def save(self, session_id: str, data: dict[str, Any], *, expires_at: datetime) -> None:
        self.calls["save"] += 1
        self.inner.save(session_id, data, expires_at=expires_at)

    def update(self, session_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        self.calls["update"] += 1
        return self.inner.update(session_id, changes, expires_at=expires_at)

    def rotate(self, old_id: str, new_id: str, changes: Changes, *, expires_at: datetime) -> Merge:
        self.calls["rotate"] += 1
        return self.inner.rotate(old_id, new_id, changes, expires_at=expires_at)

    def delete(self, session_id: str) -> None:
        self.calls["delete"] += 1
        self.inner.delete(session_id)

    def sweep(self) -> int:
        self.calls["sweep"] += 1
        return self.inner.sweep()

    def count(self) -> int:
        return self.inner.count()


def record(store: Store) -> Recorder:
    return Recorder(store.sync)
