"""The names other code is written against."""

from __future__ import annotations

import lazysession


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = {
        name
        for name in dir(lazysession)
        if not name.startswith("_")
        and name not in {"annotations", "TYPE_CHECKING", "Any"}
        and not isinstance(getattr(lazysession, name), type(lazysession))
    }
    assert set(lazysession.__all__) == public | {"SQLAlchemyStore", "RedisStore"}
    assert lazysession.__all__ == sorted(lazysession.__all__)


def test_every_name_in_all_resolves() -> None:
    for name in lazysession.__all__:
        assert getattr(lazysession, name) is not None


def test_the_names_the_issues_promise_are_there() -> None:
    for name in (
        "SessionMiddleware",
        "Session",
        "MemoryStore",
        "CookieStore",
        "SQLAlchemyStore",
        "RedisStore",
    ):
        assert name in lazysession.__all__
    from lazysession import wsgi

    assert wsgi.SessionMiddleware.__module__ == "lazysession.wsgi"
