"""Naming sessions for their owners: handles, device labels and what a store lists.

Rules:
- A *handle* names a session without granting it: it is derived from the store key (itself
  a one-way hash of the cookie's id) by another one-way hash, so a handle shown in a page
  or written to a log leads to neither the cookie nor the key. It is stable for the life
  of the id (a login's rotation gives the new session a new handle) and short enough to
  put in a URL: 16 characters of base32, 80 bits.
- A *device label* is a short, human phrase ("Firefox on Linux") read from the login
  request's ``User-Agent``; it is never the header itself (a header can be long and say
  more than the user chose to share), and it is recorded only when the app asks for it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

EventKind = Literal["created", "regenerated", "invalidated", "revoked", "swept"]

HANDLE_LENGTH = 16
"""Characters in a handle (base32, 5 bits each)."""

_HANDLE_SALT = b"lazysession handle\x00"
_HANDLE = re.compile(f"[a-z2-7]{{{HANDLE_LENGTH}}}")


def handle_of(store_key: str) -> str:
    """The handle of the session stored under ``store_key``."""
    digest = hashlib.sha256(_HANDLE_SALT + store_key.encode("ascii")).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def is_handle(text: str) -> bool:
    """Whether ``text`` has the shape of a handle (what the CLI and ``revoke`` accept)."""
    return _HANDLE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of an owner's live sessions, as ``store.sessions_of(owner)`` lists it."""

    handle: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    device: str | None = None


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """What ``on_event`` is told: a session was ``created`` (first stored), ``regenerated``
    (moved to a new id: a login), ``invalidated`` (ended by a logout), ``revoked`` (by the
    middleware's ``max_sessions_per_owner``) or ``swept`` (deleted, expired, by the
    middleware's sweep: owned sessions only, on stores whose ``sweep`` reports them, the
    memory and SQL stores; never on Redis, which expires sessions by itself). ``handle``
    names the session (for ``regenerated``, the new id's); ``owner`` is its owner, or None
    (never None for ``swept``)."""

    kind: EventKind
    handle: str
    owner: str | None


# Most specific first: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("FxiOS/", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),  # Safari names its version this way; Chrome-based ones matched above
)
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
)
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}")
DEVICE_LABEL_LIMIT = 48
"""The longest device label (characters)."""


def device_label(user_agent: str | None) -> str | None:
    """A short label for the device behind ``user_agent``: "Firefox on Linux", "Safari on
    iOS", or the client's product name ("curl") when it is not a known browser; ``None``
    for an empty or unreadable header."""
    if not user_agent:
        return None
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    if browser == "Safari" and "Safari/" not in user_agent:
        browser = None  # "Version/" without "Safari/": not Safari
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system and user_agent.startswith("Mozilla/"):
        return f"Browser on {system}"
    product = _PRODUCT.match(user_agent.strip())
    if product is None or product.group() == "Mozilla":
        return f"Browser on {system}" if system else None
    return product.group()[:DEVICE_LABEL_LIMIT]
