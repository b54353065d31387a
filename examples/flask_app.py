"""The Flask twin of the demo: ``flask --app examples/flask_app run``.

Sessions live in SQLite through the store's sync side (``LAZYSESSION_STORE_URL`` picks
another database, e.g. ``postgresql+psycopg://...`` or ``redis://...``).
"""

from __future__ import annotations

import os
import secrets

from flask import Flask, jsonify, redirect, request, session
from werkzeug.wrappers import Response

from lazysession import RedisStore, SQLAlchemyStore, Store
from lazysession.flask import LazySessionInterface

STORE_URL = os.environ.get("LAZYSESSION_STORE_URL", "sqlite:///flask-sessions.db")
API_TOKEN = "demo-token"


def make_store(url: str) -> Store:
    return RedisStore(url) if url.startswith("redis") else SQLAlchemyStore(url)


store = make_store(STORE_URL)
app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("LAZYSESSION_SECRET_KEY") or secrets.token_urlsafe(32)
app.session_interface = LazySessionInterface(store=store)


@app.get("/")
def home() -> Response:
    return jsonify(
        user=session.get("user"),
        counter=session.get("counter", 0),
        sessions_in_store=store.sync.count(),
    )


@app.post("/login")
def login() -> Response:
    session.clear()
    session["user"] = request.form.get("user", "anonymous")[:64]
    session["counter"] = 0
    session.permanent = request.form.get("remember") == "on"
    return redirect("/", code=303)


@app.post("/count")
def count() -> Response:
    if "user" in session:
        session["counter"] = int(session.get("counter", 0)) + 1
    return redirect("/", code=303)


@app.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect("/", code=303)


@app.get("/api/whoami")
def whoami() -> Response:
    if request.headers.get("Authorization") != f"Bearer {API_TOKEN}":
        return Response('{"error": "unauthorised"}', 401, content_type="application/json")
    session["api_calls"] = int(session.get("api_calls", 0)) + 1  # written, never stored
    return jsonify(client="sdk", sessions_in_store=store.sync.count())
