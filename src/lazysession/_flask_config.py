"""How Flask's settings read for lazysession: its cookie, its tagged values, and the
Flask-Session settings refused with what replaces them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask.json.tag import TaggedJSONSerializer
from werkzeug.http import dump_cookie

from ._cookies import CookieSettings
from ._errors import ConfigurationError
from ._expiry import Seconds

NO_ABSOLUTE_LIFETIME = 100 * 365 * 24 * 60 * 60
"""Flask's sessions have no absolute lifetime; without ``max_age=`` this stands in."""

FLASK_SESSION_SETTINGS: Mapping[str, str] = {
    "SESSION_TYPE": "pass store=... (MemoryStore(), SQLAlchemyStore(...), RedisStore(...))",
    "SESSION_REDIS": "pass store=RedisStore(<that client>)",
    "SESSION_KEY_PREFIX": "pass RedisStore(prefix=...) or SQLAlchemyStore(table_name=...)",
    "SESSION_ID_LENGTH": "ids are always 256 random bits",
    "SESSION_SERIALIZATION_FORMAT": "values are Flask's tagged JSON, never msgpack or pickle",
    "SESSION_CLEANUP_N_REQUESTS": "the store is swept every sweep_interval seconds",
    "SESSION_MEMCACHED": "use RedisStore or SQLAlchemyStore (there is no memcached store)",
    "SESSION_CACHELIB": "use SQLAlchemyStore('sqlite:///sessions.db') or MemoryStore()",
    "SESSION_FILE_DIR": "use SQLAlchemyStore('sqlite:///sessions.db')",
    "SESSION_FILE_THRESHOLD": "use SQLAlchemyStore('sqlite:///sessions.db')",
    "SESSION_FILE_MODE": "use SQLAlchemyStore('sqlite:///sessions.db')",
    "SESSION_MONGODB": "use RedisStore or SQLAlchemyStore (there is no MongoDB store)",
    "SESSION_MONGODB_DB": "use RedisStore or SQLAlchemyStore (there is no MongoDB store)",
    "SESSION_MONGODB_COLLECT": "use RedisStore or SQLAlchemyStore (there is no MongoDB store)",
    "SESSION_SQLALCHEMY": "pass store=SQLAlchemyStore(db.engine)",
    "SESSION_SQLALCHEMY_ENGINE": "pass store=SQLAlchemyStore(<that engine>)",
    "SESSION_SQLALCHEMY_TABLE": "pass SQLAlchemyStore(..., table_name=...)",
    "SESSION_SQLALCHEMY_SEQUENCE": "SQLAlchemyStore needs no sequence",
    "SESSION_SQLALCHEMY_SCHEMA": "pass SQLAlchemyStore(..., metadata=MetaData(schema=...))",
    "SESSION_SQLALCHEMY_BIND_KEY": "pass store=SQLAlchemyStore(db.engines[<key>])",
    "SESSION_POSTGRESQL": "pass store=SQLAlchemyStore('postgresql+psycopg://...')",
    "SESSION_POSTGRESQL_TABLE": "pass SQLAlchemyStore(..., table_name=...)",
    "SESSION_POSTGRESQL_SCHEMA": "pass SQLAlchemyStore(..., metadata=MetaData(schema=...))",
    "SESSION_DYNAMODB": "use RedisStore or SQLAlchemyStore (there is no DynamoDB store)",
    "SESSION_DYNAMODB_TABLE": "use RedisStore or SQLAlchemyStore (there is no DynamoDB store)",
    "SESSION_DYNAMODB_TABLE_EXISTS": "use RedisStore or SQLAlchemyStore (no DynamoDB store)",
}
"""Flask-Session's settings that lazysession refuses, each with what replaces it."""


class TaggedValues:
    """The core's value codec over Flask's ``TaggedJSONSerializer``: ``tag`` on the way
    out; on the way in, the untagging Flask's ``loads`` does after parsing JSON."""

    __slots__ = ("serializer",)

    def __init__(self, serializer: TaggedJSONSerializer) -> None:
        self.serializer = serializer

    def dump(self, value: Any) -> Any:
        return self.serializer.tag(value)

    def load(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.serializer.untag({key: self.load(item) for key, item in value.items()})
        if isinstance(value, list):
            return [self.load(item) for item in value]
        return value


@dataclass(frozen=True, slots=True)
class FlaskCookie(CookieSettings):
    """The session cookie as Flask writes it, through werkzeug's ``dump_cookie``."""

    flask_same_site: str | None = None
    """``SESSION_COOKIE_SAMESITE`` as given: None sends no ``SameSite`` attribute."""
    seconds: Seconds = field(default=time.time, repr=False, compare=False)

    def render(self, value: str, max_age: int | None = None) -> str:
        expires = None if max_age is None else self.seconds() + max_age
        return self._dump(value, max_age, expires)

    def render_expired(self) -> str:
        return self._dump("", 0, 0)

    def mark(self) -> str:
        """A digest of the attributes the cookie is set with (not its value, nor its
        lifetime): a session whose cookie was set under another gets it anew."""
        attributes = self._dump("", None, None).split(";", 1)[-1]
        return hashlib.sha256(attributes.encode()).hexdigest()[:8]

    def _dump(self, value: str, max_age: int | None, expires: float | None) -> str:
        return dump_cookie(
            self.name,
            value,
            max_age=max_age,
            expires=expires,
            path=self.path,
            domain=self.domain,
            secure=self.secure,
            httponly=self.httponly,
            sync_expires=False,
            max_size=0,  # size is lazysession's to check (SessionTooLarge), not a warning
            samesite=self.flask_same_site,
            partitioned=self.partitioned,
        )


def lifetime_seconds(lifetime: object) -> int:
    seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 1:
        raise ConfigurationError(
            f"PERMANENT_SESSION_LIFETIME={lifetime!r}: expected a timedelta or seconds, "
            "one second or more"
        )
    return int(seconds)


def samesite_setting(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.title() in ("Strict", "Lax", "None"):
        return value.title()
    raise ConfigurationError(
        f"SESSION_COOKIE_SAMESITE={value!r}: expected 'Strict', 'Lax', 'None' or None"
    )


def refuse_flask_session_settings(config: Mapping[str, Any]) -> None:
    found = [name for name in FLASK_SESSION_SETTINGS if name in config]
    if config.get("SESSION_USE_SIGNER") is False:
        found.append("SESSION_USE_SIGNER")
    if not found:
        return
    advice = {**FLASK_SESSION_SETTINGS, "SESSION_USE_SIGNER": "the session id is always signed"}
    lines = "; ".join(f"{name}: {advice[name]}" for name in found)
    raise ConfigurationError(
        f"Flask-Session settings that lazysession does not read are set; remove them. {lines}"
    )
