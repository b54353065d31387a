"""``session.modified = True`` (Flask's idiom after an in-place change) and the reserved
metadata key, on the core's session and Flask's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lazysession import Session, SessionKeyReserved
from lazysession._expiry import META_KEY
from lazysession._outcome import changes_of
from lazysession.flask import FlaskSession


@pytest.mark.parametrize("kind", [Session, FlaskSession])
def test_setting_modified_records_every_key_as_changed(kind: type[Session]) -> None:
    session = kind({"cart": ["1"], "theme": "dark"})
    session["cart"].append("2")
    assert not session.modified
    session.modified = True
    assert session.modified and session.accessed
    assert changes_of(session).set == {"cart": ["1", "2"], "theme": "dark"}


@pytest.mark.parametrize("kind", [Session, FlaskSession])
def test_a_key_write_records_only_that_key(kind: type[Session]) -> None:
    session = kind({"cart": ["1"], "theme": "dark"})
    session["theme"] = "light"
    assert session.modified
    assert changes_of(session).set == {"theme": "light"}


def test_setting_modified_false_drops_the_write() -> None:
    session = Session({"cart": "1"})
    session["cart"] = "2"
    session.modified = False
    assert not session.modified


def _setitem(s: Session) -> Any:
    s[META_KEY] = "mine"


def _update(s: Session) -> Any:
    s.update({META_KEY: "mine", "cart": "3"})


def _update_kwargs(s: Session) -> Any:
    s.update(**{META_KEY: "mine"})


def _setdefault(s: Session) -> Any:
    return s.setdefault(META_KEY, "mine")


def _ior(s: Session) -> Any:
    s |= {META_KEY: "mine"}


@pytest.mark.parametrize("kind", [Session, FlaskSession])
@pytest.mark.parametrize("setting", [_setitem, _update, _update_kwargs, _setdefault, _ior])
def test_the_metadata_key_is_refused_and_nothing_changes(
    kind: type[Session], setting: Callable[[Session], Any]
) -> None:
    session = kind({"theme": "dark"})
    with pytest.raises(SessionKeyReserved) as raised:
        setting(session)
    assert isinstance(raised.value, ValueError) and raised.value.key == META_KEY
    assert META_KEY in str(raised.value)
    assert dict(session) == {"theme": "dark"} and not session.modified
