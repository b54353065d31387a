"""``encrypt=True`` with the cookie store (issue 15, item 9), on every shell.

The cookie is AES-256-GCM: the user cannot read it, and the tag is its signature, so the
rules of signed cookies hold for it too: exactly the bytes the server sent decrypt
(canonical base64, checked before the cipher), anything else is an empty session with a
normal response; the first key encrypts, every key decrypts, the next write encrypts
under the first. Cookies signed before encryption was turned on are still read.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from typing import Any

import flask
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazysession import ConfigurationError, CookieStore, SessionMiddleware, SessionTooLarge
from lazysession._cookies import BROWSER_COOKIE_LIMIT
from lazysession._signing import DataCipher, DataSigner, SecretKeys
from lazysession.flask import LazySessionInterface
from lazysession.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.helpers import SECRET, client, make_app
from tests.reliability import race_apps
from tests.reliability.race_apps import SHELLS, Shell, make_shell
from tests.reliability.test_races import started
from tests.security.cookies import MUTATIONS, cookie

pytestmark = pytest.mark.anyio

MARKER = "marker-0c3e77a1-never-readable"
NEW_KEY = "crypt-new-secret-" + "n" * 24


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=SHELLS)
def shell_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Shell]:
    """``keyed(kind, keys, **options)``: a cookie-store shell whose secret keys are
    ``keys`` (the first current)."""

    def make(kind: str, keys: list[str], **options: Any) -> Shell:
        if kind != "flask":
            monkeypatch.setattr(race_apps, "SECRET", keys)
            return make_shell(kind, CookieStore(), **options)
        shell = make_shell(kind, CookieStore(), **options)
        app: Any = shell.app  # type: ignore[attr-defined]  # a ThreadShell's Flask app
        app.config["SECRET_KEY"] = keys[0]
        app.config["SECRET_KEY_FALLBACKS"] = keys[1:]
        return shell

    return make


def decoded(value: str) -> bytes:
    """What a user reads out of a cookie value by decoding its base64."""
    parts = value.split(".")
    raw = b""
    for part in parts:
        padded = part + "=" * (-len(part) % 4)
        raw += base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    return raw


async def read(shell: Shell, value: str) -> dict[str, Any]:
    return (await started(shell, "/read", value)).data()


async def test_a_session_round_trips_in_an_encrypted_cookie(shell_kind: str) -> None:
    shell = make_shell(shell_kind, CookieStore(), encrypt=True)
    first = await started(shell, "/write", None, user="ada", role="admin")
    assert first.cookie is not None
    assert await read(shell, first.cookie) == {"user": "ada", "role": "admin"}
    popped = await started(shell, "/pop", first.cookie, key="role")
    assert popped.cookie is not None
    login = await started(shell, "/login", popped.cookie, user="bob")
    assert login.cookie is not None
    assert await read(shell, login.cookie) == {"user": "bob"}
    out = await started(shell, "/logout", login.cookie)
    assert out.expired


async def test_the_user_cannot_read_the_cookie(shell_kind: str) -> None:
    plain = make_shell(shell_kind, CookieStore())
    signed = await started(plain, "/write", None, secret=MARKER)
    assert signed.cookie is not None and MARKER.encode() in decoded(signed.cookie)
    shell = make_shell(shell_kind, CookieStore(), encrypt=True)
    sealed = await started(shell, "/write", None, secret=MARKER)
    assert sealed.cookie is not None
    assert MARKER.encode() not in decoded(sealed.cookie)
    assert b"secret" not in decoded(sealed.cookie)


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
async def test_a_bent_encrypted_cookie_is_an_empty_session(
    shell_kind: str, mutate: Callable[[str], str]
) -> None:
    shell = make_shell(shell_kind, CookieStore(), encrypt=True)
    good = None
    while good is None or mutate(good) == good:  # a last character with no spare bits to
        good = (await started(shell, "/write", None, user="ada")).cookie  # flip: another
    assert good is not None
    if shell_kind != "asgi":
        assert await read(shell, mutate(good)) == {}
        return
    async with client(make_app(encrypt=True)) as http:  # latin-1 bytes, as ASGI has them
        assert (await http.get("/read", headers=cookie(good))).json() == {"user": "ada"}
        response = await http.get("/read", headers=cookie(mutate(good)))
    assert response.status_code == 200
    assert response.json() == {}


async def test_another_key_cannot_decrypt_it(shell_kind: str, keyed: Any) -> None:
    good = (
        await started(keyed(shell_kind, [SECRET], encrypt=True), "/write", None, user="ada")
    ).cookie
    assert good is not None
    assert await read(keyed(shell_kind, [NEW_KEY], encrypt=True), good) == {}


async def test_a_retired_key_decrypts_and_the_next_write_encrypts_under_the_first(
    shell_kind: str, keyed: Any
) -> None:
    good = (
        await started(keyed(shell_kind, [SECRET], encrypt=True), "/write", None, user="ada")
    ).cookie
    assert good is not None
    rotated = keyed(shell_kind, [NEW_KEY, SECRET], encrypt=True)
    assert await read(rotated, good) == {"user": "ada"}
    again = (await started(rotated, "/write", good, n="1")).cookie
    assert again is not None
    assert await read(keyed(shell_kind, [NEW_KEY], encrypt=True), again) == {
        "user": "ada",
        "n": "1",
    }


async def test_a_cookie_signed_before_encryption_is_read_and_then_encrypted(
    shell_kind: str,
) -> None:
    signed = (
        await started(make_shell(shell_kind, CookieStore()), "/write", None, user="ada")
    ).cookie
    assert signed is not None and "." in signed
    shell = make_shell(shell_kind, CookieStore(), encrypt=True)
    assert await read(shell, signed) == {"user": "ada"}
    encrypted = (await started(shell, "/write", signed, n="1")).cookie
    assert encrypted is not None and "." not in encrypted
    assert await read(shell, encrypted) == {"user": "ada", "n": "1"}


async def test_an_encrypted_cookie_read_without_encryption_is_an_empty_session(
    shell_kind: str,
) -> None:
    sealed = (
        await started(
            make_shell(shell_kind, CookieStore(), encrypt=True), "/write", None, user="ada"
        )
    ).cookie
    assert sealed is not None
    assert await read(make_shell(shell_kind, CookieStore()), sealed) == {}


async def test_the_cookie_is_bound_to_its_name() -> None:
    one = make_app(encrypt=True, session_cookie="one")
    two = make_app(encrypt=True, session_cookie="two")
    async with client(one) as http:
        await http.get("/write", params={"user": "ada"})
        value = http.cookies["one"]
    async with client(two) as http:
        assert (await http.get("/read", headers=cookie(value, "two"))).json() == {}


async def test_a_session_larger_than_a_browser_keeps_is_refused() -> None:
    async with client(make_app(encrypt=True)) as http:
        with pytest.raises(SessionTooLarge):
            await http.get("/write", params={"big": "x" * 3100})


# -- the cipher itself -----------------------------------------------------------------------


def cipher(keys: object = SECRET, name: str = "session") -> DataCipher:
    return DataCipher(SecretKeys(keys), name)


def test_exactly_one_value_decrypts_for_a_cookie() -> None:
    made = cipher()
    value = made.sign('{"user":"ada"}')
    assert made.unsign(value) is not None
    for mutate in MUTATIONS.values():
        bent = mutate(value)
        if bent != value:  # flipping spare bits of a last character that has none is no edit
            assert made.unsign(bent) is None


@settings(max_examples=300)
@given(st.data())
def test_any_edit_of_an_encrypted_cookie_fails(data: st.DataObject) -> None:
    made = cipher()
    value = made.sign('{"user":"ada","n":12345}')
    at = data.draw(st.integers(0, len(value) - 1))
    cut = data.draw(st.integers(0, 3))
    inserted = data.draw(st.text(max_size=4))
    edited = value[:at] + inserted + value[at + cut :]
    if edited != value:
        assert made.unsign(edited) is None


def test_bent_copies_are_never_remembered() -> None:
    made = cipher()
    value = made.sign('{"user":"ada"}')
    made.unsign(value)
    for n in range(200):
        made.unsign(value + "A" * (n % 7 + 1))
        made.unsign(value[:-1] + "ABCD"[n % 4])
    assert list(made._verified) == [value]


def test_the_overhead_over_a_signed_cookie_is_a_few_bytes() -> None:
    signer, made = DataSigner(SecretKeys(SECRET)), cipher()
    for size in (0, 10, 100, 1000, 3000):
        text = '{"v":"' + "x" * size + '"}'
        extra = len(made.sign(text)) - len(signer.sign(text))
        assert 10 <= extra <= 22, (size, extra)


def test_what_the_4_kb_limit_leaves() -> None:
    made = cipher()
    fits = [
        size
        for size in range(2950, 3100)
        if len("session=" + made.sign("x" * size)) <= BROWSER_COOKIE_LIMIT
    ]
    assert max(fits) == 3026  # bytes of JSON, the session's own metadata included


# -- the extra -------------------------------------------------------------------------------


@pytest.fixture
def no_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)


def test_without_the_extra_encryption_names_it(no_cryptography: None) -> None:
    def wsgi_app(environ: Any, start_response: Any) -> Any:
        return []

    for build in (
        lambda: SessionMiddleware(make_app(), secret_key=SECRET, encrypt=True),
        lambda: WSGISessionMiddleware(wsgi_app, secret_key=SECRET, encrypt=True),
        lambda: LazySessionInterface(encrypt=True),
    ):
        with pytest.raises(ConfigurationError, match=r"pip install 'lazysession\[encryption\]'"):
            build()
    app = flask.Flask(__name__)  # without encryption, nothing asks for the package
    app.config["SECRET_KEY"] = SECRET
    app.session_interface = LazySessionInterface()
    assert app.test_client().get("/").status_code == 404


def test_encrypt_takes_a_bool_only() -> None:
    with pytest.raises(ConfigurationError, match="encrypt"):
        SessionMiddleware(make_app(), secret_key=SECRET, encrypt="yes")  # type: ignore[arg-type]
