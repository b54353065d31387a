"""Handles and device labels: what a "your devices" page may show."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazysession._identity import (
    DEVICE_LABEL_LIMIT,
    HANDLE_LENGTH,
    device_label,
    handle_of,
    is_handle,
)

KEY = hashlib.sha256(b"some session id").hexdigest()


def test_a_handle_is_stable_for_one_key() -> None:
    assert handle_of(KEY) == handle_of(KEY)


def test_a_handle_is_short_and_url_safe() -> None:
    handle = handle_of(KEY)
    assert len(handle) == HANDLE_LENGTH
    assert set(handle) <= set(string.ascii_lowercase + "234567")
    assert is_handle(handle)


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_handles_of_different_keys_differ(key: str) -> None:
    other = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert handle_of(key) != handle_of(other)


@pytest.mark.parametrize(
    "text", ["", "ABCDEFGHIJKLMNOP", "abcdefghijklmno", "abcdefghijklmnop1", "abc1efghijklmnop"]
)
def test_text_that_is_not_a_handle_is_told_apart(text: str) -> None:
    assert not is_handle(text)


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "python-httpx"),
        ("Mozilla/5.0 (X11; Linux x86_64) SomethingNew/1.0", "Browser on Linux"),
    ],
)
def test_a_device_label_names_browser_and_system(user_agent: str, label: str) -> None:
    assert device_label(user_agent) == label


@pytest.mark.parametrize("user_agent", [None, "", "   ", "\x00\x01", "Mozilla/5.0"])
def test_an_empty_or_unreadable_user_agent_has_no_label(user_agent: str | None) -> None:
    assert device_label(user_agent) is None


@given(st.text(max_size=4096))
def test_a_device_label_is_short_printable_and_never_the_header(user_agent: str) -> None:
    label = device_label(user_agent)
    if label is not None:
        assert len(label) <= DEVICE_LABEL_LIMIT
        assert label.isprintable()
        assert label.isascii()
