"""Reading the Cookie header and rendering Set-Cookie."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession import ConfigurationError, CookieSettings
from lazysession._cookies import (
    SAME_NAME_LIMIT,
    _searched_values,
    _split_values,
    cookie_values,
)


def test_finds_the_named_cookie_among_others() -> None:
    assert cookie_values("a=1; session=abc; b=2", "session") == ["abc"]


def test_keeps_every_cookie_of_the_same_name_in_browser_order() -> None:
    assert cookie_values("session=first; session=second", "session") == ["first", "second"]


def test_a_name_that_merely_contains_ours_does_not_match() -> None:
    assert cookie_values("mysession=x; session_x=y", "session") == []


def test_strips_double_quotes_around_a_value() -> None:
    assert cookie_values('session="abc"', "session") == ["abc"]


def test_a_value_may_contain_equals_signs() -> None:
    assert cookie_values("session=a==.b=", "session") == ["a==.b="]


@given(st.text())
def test_any_header_text_parses_without_error(header: str) -> None:
    for value in cookie_values(header, "session"):
        assert ";" not in value


def test_only_the_first_values_of_one_name_are_returned() -> None:
    header = "; ".join(f"session=v{n}" for n in range(1000))
    expected = [f"v{n}" for n in range(SAME_NAME_LIMIT)]
    assert cookie_values(header, "session") == expected
    assert cookie_values(header[:200], "session") == expected


def test_spaces_and_tabs_around_names_and_values_are_ignored() -> None:
    assert cookie_values("a=1;\t session \t= abc ;b=2", "session") == ["abc"]


cookie_text = st.text(alphabet=st.sampled_from(' \t;="sesionx\xe9a'), max_size=400)


@given(cookie_text, st.sampled_from(["session", "s", "x"]))
def test_short_and_long_headers_are_read_alike(header: str, name: str) -> None:
    assert _split_values(header, name) == _searched_values(header, name)


def test_renders_starlettes_attributes() -> None:
    cookie = CookieSettings(secure=True, domain="example.com", partitioned=True)
    assert cookie.render("v", 60) == (
        "session=v; Max-Age=60; path=/; httponly; samesite=lax; secure; "
        "domain=example.com; partitioned"
    )


def test_a_browser_session_cookie_has_no_max_age() -> None:
    assert "Max-Age" not in CookieSettings().render("v", None)


def test_an_expired_cookie_has_a_past_date_and_zero_max_age() -> None:
    expired = CookieSettings().render_expired()
    assert expired.startswith("session=null; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0;")


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "bad name"},
        {"name": "a;b"},
        {"same_site": "sometimes"},
        {"path": "/; secure"},
        {"max_age": "3600"},
    ],
)
def test_bad_cookie_settings_fail_at_start_up(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CookieSettings(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "rule"),
    [
        ({"name": "__Host-sid"}, "__Host- .*Secure"),
        ({"name": "__host-sid"}, "__Host- .*Secure"),
        ({"name": "__Host-sid", "secure": True, "domain": "example.com"}, "__Host- .*Domain"),
        ({"name": "__Host-sid", "secure": True, "path": "/app"}, "__Host- .*path"),
        ({"name": "__Secure-sid"}, "__Secure- .*Secure"),
        ({"name": "__SECURE-sid"}, "__Secure- .*Secure"),
        ({"same_site": "none"}, "SameSite=None .*Secure"),
        ({"partitioned": True}, "Partitioned .*Secure"),
        ({"path": "/caf\u00e9"}, "printable ASCII"),
        ({"path": "/\u20ac"}, "printable ASCII"),
        ({"path": "/a\tb"}, "printable ASCII"),
        ({"path": "app"}, "start with '/'"),
        ({"path": "/" + "a" * 1024}, "1024"),
        ({"domain": "b\u00fccher.example"}, "xn--"),
        ({"domain": "a\x7fb.example"}, "printable ASCII"),
    ],
    ids=[
        "__Host- without Secure",
        "__host- (any case) without Secure",
        "__Host- with a Domain",
        "__Host- with a path other than /",
        "__Secure- without Secure",
        "__SECURE- (any case) without Secure",
        "SameSite=None without Secure",
        "Partitioned without Secure",
        "a latin-1 path",
        "a path beyond latin-1",
        "a control character in the path",
        "a relative path",
        "a path over 1024 bytes",
        "an internationalised domain",
        "a control character in the domain",
    ],
)
def test_settings_a_browser_would_reject_fail_naming_the_rule(
    settings: dict[str, object], rule: str
) -> None:
    with pytest.raises(ConfigurationError, match=rule):
        CookieSettings(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "__Host-sid", "secure": True},
        {"name": "__Secure-sid", "secure": True, "domain": "example.com", "path": "/app"},
        {"same_site": "none", "secure": True},
        {"partitioned": True, "secure": True, "same_site": "none"},
        {"path": "/app/v1.2/~me", "domain": "xn--bcher-kva.example"},
    ],
)
def test_settings_a_browser_keeps_are_accepted(settings: dict[str, object]) -> None:
    CookieSettings(**settings)  # type: ignore[arg-type]
