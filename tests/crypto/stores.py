"""What a store holds, as someone who dumps it (or writes to it) sees it, for the
encryption tests: the raw rows, hashes and entries, and raw writes through the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio.to_thread
import redis
import sqlalchemy as sa

from lazysession import MemoryStore
from lazysession._signing import IdSigner, SecretKeys, new_session_id, store_key
from lazysession.stores import Record, RedisStore, SQLAlchemyStore
from tests.reliability.race_apps import Harness
from tests.stores.backends import REDIS, sync_driver

LATER = timedelta(hours=1)


def dump(store: object) -> str:
    """Everything the store holds, as text: a table dump, a Redis dump, the process's
    memory of the entries."""
    if isinstance(store, MemoryStore):
        return repr(store._entries)
    if isinstance(store, RedisStore):
        client = redis.Redis.from_url(REDIS)
        try:
            return repr(
                {key: client.hgetall(key) for key in client.scan_iter(match=store.prefix + "*")}
            )
        finally:
            client.close()
    assert isinstance(store, SQLAlchemyStore)
    url = store._url
    assert url is not None
    engine = sa.create_engine(url.set(drivername=sync_driver(url.drivername + "://")))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(store.table)).all()
    finally:
        engine.dispose()
    return repr([tuple(row) for row in rows])


async def stored(harness: Harness, cookie: str, secret: object = None) -> Record:
    """The record under a cookie's id (signed with ``secret``, by default the tests'), as
    the store hands it out: encrypted."""
    if secret is None:
        record = await harness.record(cookie)
    elif harness.opened.sync:
        record = await anyio.to_thread.run_sync(harness.store.sync.read, key_of(cookie, secret))
    else:
        record = await harness.store.read(key_of(cookie, secret))
    assert record is not None and not record.retired
    return record


async def put(harness: Harness, key: str, data: dict[str, Any]) -> None:
    """Store ``data`` under store key ``key`` as it is (what an attacker with write
    access to the store could do)."""
    expires_at = datetime.now(timezone.utc) + LATER
    if harness.opened.sync:
        await anyio.to_thread.run_sync(
            lambda: harness.store.sync.save(key, data, expires_at=expires_at)
        )
    else:
        await harness.store.save(key, data, expires_at=expires_at)


def key_of(cookie: str, secret: object) -> str:
    """The store key a cookie of ``secret``'s names."""
    found = IdSigner(SecretKeys(secret)).verify(cookie)
    assert found is not None
    return found[2]


def new_cookie(secret: object) -> tuple[str, str]:
    """A fresh signed id for ``secret`` and its store key (no session behind it yet)."""
    session_id = new_session_id()
    return IdSigner(SecretKeys(secret)).sign(session_id), store_key(session_id)
