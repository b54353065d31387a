"""A header of many same-name cookies buys a bounded number of checks (issue 15, item 3).

Only the first ``SAME_NAME_LIMIT`` values of the session cookie's name are tried, in the
order the browser sent them; a valid value past them is never looked at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lazysession._cookies import SAME_NAME_LIMIT
from tests.helpers import RecordingStore, client, make_app
from tests.security.cookies import store_of

pytestmark = pytest.mark.anyio


def forged_like(value: str, n: int) -> str:
    """The shape of ``value`` with another signature: checked, and refused, by HMAC."""
    tail = f"{n:04d}".translate(str.maketrans("0123456789", "BCDEFGHIJK"))
    return value[:-5] + tail + "A"


def header_with(value: str, forged_before: int) -> dict[str, str]:
    forged = [f"session={forged_like(value, n)}" for n in range(forged_before)]
    return {"cookie": "; ".join([*forged, f"session={value}"])}


@pytest.mark.parametrize("kind", ["memory", "cookie"])
@pytest.mark.parametrize("forged_before", [SAME_NAME_LIMIT, 2000])
async def test_a_valid_value_after_the_first_few_of_its_name_is_not_read(
    kind: str, forged_before: int, tmp_path: Path
) -> None:
    async with store_of(kind, tmp_path) as store, client(make_app(store=store)) as http:
        await http.get("/write", params={"user": "ada"})
        good = http.cookies["session"]
        http.cookies.clear()
        if isinstance(store, RecordingStore):
            store.calls.clear()
        response = await http.get("/read", headers=header_with(good, forged_before))
    assert response.json() == {}
    if isinstance(store, RecordingStore):
        assert store.calls == {}


@pytest.mark.parametrize("kind", ["memory", "cookie"])
async def test_a_valid_value_among_the_first_few_of_its_name_is_read(
    kind: str, tmp_path: Path
) -> None:
    async with store_of(kind, tmp_path) as store, client(make_app(store=store)) as http:
        await http.get("/write", params={"user": "ada"})
        good = http.cookies["session"]
        http.cookies.clear()
        response = await http.get("/read", headers=header_with(good, SAME_NAME_LIMIT - 1))
    assert response.json() == {"user": "ada"}
