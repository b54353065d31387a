"""An exchange's steps come in one order, each once; anything else raises."""

from __future__ import annotations

import pytest

from lazysession._exchange import State
from lazysession._signing import new_session_id

from .test_rules import persist, record, rules, signed_cookie


def test_an_exchange_with_a_cookie_to_load_starts_loading() -> None:
    exchange = rules().begin(signed_cookie(new_session_id()))
    assert exchange.state is State.LOADING


def test_an_exchange_without_a_cookie_starts_ready() -> None:
    assert rules().begin(None).state is State.READY


def test_finish_before_loaded_raises() -> None:
    exchange = rules().begin(signed_cookie(new_session_id()))
    with pytest.raises(RuntimeError, match="loading"):
        exchange.finish(200, persist(), None)


def test_loaded_twice_raises() -> None:
    exchange = rules().begin(signed_cookie(new_session_id()))
    exchange.loaded(record({"n": 1}))
    with pytest.raises(RuntimeError, match="ready"):
        exchange.loaded(record({"n": 1}))


def test_loaded_without_a_load_raises() -> None:
    with pytest.raises(RuntimeError, match="nothing to load"):
        rules().begin(None).loaded(None)


def test_unavailable_after_loaded_raises() -> None:
    exchange = rules().begin(signed_cookie(new_session_id()))
    exchange.loaded(None)
    with pytest.raises(RuntimeError):
        exchange.unavailable(proceed=True)


def test_finish_twice_raises() -> None:
    exchange = rules().begin(None)
    exchange.session["n"] = 1  # type: ignore[index]
    exchange.finish(200, persist(), None)
    assert exchange.state is State.FINISHED
    with pytest.raises(RuntimeError, match="finished"):
        exchange.finish(200, persist(), None)


def test_an_unavailable_session_finishes_with_nothing_to_persist() -> None:
    exchange = rules().begin(signed_cookie(new_session_id()))
    exchange.unavailable(proceed=True)
    assert exchange.state is State.UNAVAILABLE
    assert not exchange.finish(200, persist(), None).write
