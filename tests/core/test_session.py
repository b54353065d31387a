"""Session: a dict that tracks reads, writes and which keys changed."""

from __future__ import annotations

import json

from lazysession import Changes, Session
from lazysession._outcome import changes_of


def test_a_session_built_from_a_mapping_is_neither_accessed_nor_modified() -> None:
    session = Session({"user": "ada"})
    assert session == {"user": "ada"}
    assert not session.accessed
    assert not session.modified


def test_reading_does_not_mark_the_session_modified() -> None:
    session = Session({"user": "ada"})
    assert session.get("user") == "ada"
    assert session["user"] == "ada"
    assert not session.modified


def test_mark_accessed_sets_only_accessed() -> None:
    session = Session()
    session.mark_accessed()
    assert session.accessed
    assert not session.modified


def test_setting_a_key_marks_it_changed() -> None:
    session = Session({"a": 1})
    session["b"] = 2
    assert session.modified and session.accessed
    assert changes_of(session) == Changes(set={"b": 2})


def test_deleting_a_key_records_its_removal() -> None:
    session = Session({"a": 1, "b": 2})
    del session["a"]
    assert changes_of(session) == Changes(removed=frozenset({"a"}))


def test_setting_a_removed_key_again_counts_as_a_set() -> None:
    session = Session({"a": 1})
    del session["a"]
    session["a"] = 3
    assert changes_of(session) == Changes(set={"a": 3})


def test_pop_of_a_missing_key_with_a_default_changes_nothing() -> None:
    session = Session({"a": 1})
    assert session.pop("missing", None) is None
    assert not session.modified


def test_pop_of_a_present_key_records_its_removal() -> None:
    session = Session({"a": 1})
    assert session.pop("a") == 1
    assert changes_of(session).removed == {"a"}


def test_popitem_records_its_removal() -> None:
    session = Session({"a": 1})
    assert session.popitem() == ("a", 1)
    assert changes_of(session).removed == {"a"}


def test_setdefault_changes_only_a_missing_key() -> None:
    session = Session({"a": 1})
    assert session.setdefault("a", 5) == 1
    assert not session.modified
    assert session.setdefault("b", 5) == 5
    assert changes_of(session) == Changes(set={"b": 5})


def test_update_and_in_place_or_record_every_key() -> None:
    session = Session()
    session.update({"a": 1}, b=2)
    session |= {"c": 3}
    assert changes_of(session) == Changes(set={"a": 1, "b": 2, "c": 3})


def test_an_empty_update_still_counts_as_a_modification_as_in_starlette() -> None:
    session = Session({"a": 1})
    session.update({})
    assert session.modified


def test_clear_asks_for_a_full_replace() -> None:
    session = Session({"a": 1})
    session.clear()
    session["b"] = 2
    assert changes_of(session) == Changes(set={"b": 2}, replace=True)


def test_mark_modified_flags_every_present_key_for_writing() -> None:
    session = Session({"cart": [1]})
    session["cart"].append(2)
    assert not session.modified
    session.mark_modified()
    assert changes_of(session) == Changes(set={"cart": [1, 2]})


def test_changes_merge_onto_the_latest_stored_copy() -> None:
    changes = Changes(set={"b": 2}, removed=frozenset({"c"}))
    assert changes.apply_to({"a": 1, "b": 0, "c": 3}) == {"a": 1, "b": 2}


def test_a_replace_ignores_the_stored_copy() -> None:
    assert Changes(set={"b": 2}, replace=True).apply_to({"a": 1}) == {"b": 2}


def test_changes_onto_a_missing_session_start_from_empty() -> None:
    assert Changes(set={"b": 2}).apply_to(None) == {"b": 2}


def test_a_session_is_a_dict_for_json_and_isinstance() -> None:
    session = Session({"a": [1, 2]})
    assert isinstance(session, dict)
    assert json.loads(json.dumps(session)) == {"a": [1, 2]}
