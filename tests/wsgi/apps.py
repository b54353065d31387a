"""A raw WSGI app covering what the session layer must handle, and a call recorder."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from lazysession import Store
from lazysession.wsgi import get_session
from tests.shells.stores import RecordedSync

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


Recorder = RecordedSync
"""Counts the calls the WSGI middleware makes to a store's sync side."""


def record(store: Store) -> Recorder:
    return RecordedSync(store.sync, Counter())
