"""Unlucky deployments: settings an app commonly has that the store is handed (the
README: "Pass your own redis-py client ... to share it"; "Pass your Engine ... to reuse
the app's pool"). Each must work, or fail when the middleware is built, naming the
setting: never serve every request as if its session were gone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis
import redis.asyncio

from lazysession import ConfigurationError, Store, StoreError
from lazysession.stores import RedisStore, SQLAlchemyStore
from tests.attacks.apps import started
from tests.conftest import require_server
from tests.reliability.race_apps import make_shell
from tests.stores.backends import MYSQL, REDIS, drop_table, server_reachable, with_driver

pytestmark = pytest.mark.anyio


@pytest.fixture
def prefix() -> Iterator[str]:
    if not server_reachable(REDIS):
        require_server(f"no redis server at {REDIS}")
    prefix = f"lazysession-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    admin = redis.Redis.from_url(REDIS)
    for key in list(admin.scan_iter(match=prefix + "*")):
        admin.delete(key)
    admin.close()


@pytest.mark.parametrize("shell_kind", ["asgi", "wsgi"])
async def test_a_shared_redis_client_that_decodes_responses_works_or_is_refused(
    prefix: str, shell_kind: str
) -> None:
    client: redis.Redis | redis.asyncio.Redis = (
        redis.asyncio.Redis.from_url(REDIS, decode_responses=True)
        if shell_kind == "asgi"
        else redis.Redis.from_url(REDIS, decode_responses=True)
    )
    try:
        try:
            store: Store = RedisStore(client, prefix=prefix)
            shell = make_shell(shell_kind, store)
        except ConfigurationError:
            return  # refused at start-up, naming the setting: fine
        written = await started(shell, "/write", None, cart="3")
        assert written.cookie is not None
        read = await started(shell, "/read", written.cookie)
        assert read.data() == {"cart": "3"}, "the session written one request ago is gone"
    finally:
        if isinstance(client, redis.asyncio.Redis):
            await client.aclose()
        else:
            client.close()


def test_a_mariadb_connection_in_utf8_stores_an_emoji_or_is_refused() -> None:
    if not server_reachable(MYSQL):
        require_server(f"no mysql server at {MYSQL}")
    table = f"lazysession_test_{uuid.uuid4().hex[:12]}"
    url = with_driver(MYSQL, "mysql+pymysql")
    try:
        store = SQLAlchemyStore(url + "?charset=utf8", table_name=table)
    except ConfigurationError:
        return  # refused at start-up, naming the setting: fine
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    try:
        try:
            store.sync.save("a" * 64, {"name": "Zoë \U0001f600"}, expires_at=expires)
        except StoreError as error:
            pytest.fail(f"a session holding an emoji cannot be saved: {error}")
        record = store.sync.read("a" * 64)
        assert record is not None and record.data == {"name": "Zoë \U0001f600"}
    finally:
        store.sync.close()
        drop_table(url, table)


def test_a_redis_url_asking_for_decoded_responses_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisStore(REDIS + "?decode_responses=true")


@pytest.mark.parametrize("charset", ["utf8", "utf8mb3", "latin1"])
def test_a_mysql_url_with_a_charset_short_of_utf8mb4_is_refused(charset: str) -> None:
    url = with_driver(MYSQL, "mysql+pymysql")
    with pytest.raises(ConfigurationError, match="utf8mb4"):
        SQLAlchemyStore(f"{url}?charset={charset}")
