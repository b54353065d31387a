"""Padded copies of one valid cookie cannot grow the process (issue 15, item 2).

The signers remember values that verified. Were the raw cookie text the key, 3,000 copies
of one valid cookie, each padded to 100 KB with bytes a lenient decoder skips, would
hold 300 MB. Only canonical values are remembered, so the process's resident memory must
stay flat, and the browser's own entry stays where it was.
"""

from __future__ import annotations

import gc

import pytest

from lazysession import MemoryStore
from tests.security.asgi import call, middleware, session_cookie

pytestmark = pytest.mark.anyio

COPIES = 3000
PADDED_TO = 100 * 1024
LIMIT_MB = 20  # "well under 50 MB"; 3,000 remembered copies would be about 300


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("kind", ["memory", "cookie"])
async def test_padded_copies_of_a_valid_cookie_leave_resident_memory_flat(kind: str) -> None:
    asgi = middleware(MemoryStore() if kind == "memory" else None)
    good = await session_cookie(asgi)
    assert (await call(asgi, b"session=" + good))[1] == {"user": "ada"}
    signer = asgi.rules._id_signer if kind == "memory" else asgi.rules._data_signer
    remembered = signer._verified
    assert list(remembered) == [good.decode()]
    gc.collect()
    before = resident_mb()
    for n in range(COPIES):
        junk = b"!" * (n + 1) + b"\xe9" * (PADDED_TO - len(good) - n - 1)  # none is base64
        status, _, _ = await call(asgi, b"session=" + good + junk)
        assert status == 200
    gc.collect()
    grown = resident_mb() - before
    print(f"{kind}: resident {before:.1f} MB -> {before + grown:.1f} MB ({grown:+.1f} MB)")
    assert grown < LIMIT_MB
    assert list(remembered) == [good.decode()]  # the browser's entry was not pushed out
