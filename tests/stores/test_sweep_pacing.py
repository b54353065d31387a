"""How big each sweep batch is: fixed on databases where a batch blocks no one, paced to a
time budget on SQLite, where every writer waits behind it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lazysession.stores.sql.pacing import LOG_PAGES, SweepPacer


def test_without_a_budget_every_batch_is_the_largest() -> None:
    pacer = SweepPacer(1000, None)
    pacer.record(1000, 5.0)
    assert pacer.size == 1000


def test_a_batch_is_sized_to_take_about_the_budget() -> None:
    pacer = SweepPacer(1000, 0.01)
    pacer.record(pacer.size, 0.02)  # 200 rows in 20 ms: 10,000 rows a second
    assert pacer.size == 100


def test_a_fast_pace_is_capped_at_the_largest_batch() -> None:
    pacer = SweepPacer(1000, 0.01)
    pacer.record(pacer.size, 0.0001)
    assert pacer.size == 1000


def test_the_last_short_batch_does_not_change_the_size() -> None:
    pacer = SweepPacer(1000, 0.01)
    before = pacer.size
    pacer.record(3, 0.5)
    assert pacer.size == before


@given(
    largest=st.integers(min_value=1, max_value=100_000),
    budget=st.floats(min_value=0.001, max_value=1.0),
    batches=st.lists(st.floats(min_value=1e-6, max_value=10.0), max_size=20),
)
def test_a_paced_size_stays_within_its_bounds(
    largest: int, budget: float, batches: list[float]
) -> None:
    pacer = SweepPacer(largest, budget)
    for seconds in batches:
        pacer.record(pacer.size, seconds)
        assert min(50, largest) <= pacer.size <= largest


def test_a_fixed_pace_rests_half_as_long_as_each_batch_took() -> None:
    assert SweepPacer(1000, None).rest(0.004) == 0.002


def test_a_paced_sqlite_sweep_does_not_rest() -> None:
    assert SweepPacer(1000, 0.01).rest(0.004) == 0.0


def test_the_first_batch_is_checkpointed_to_learn_the_log_s_pace() -> None:
    pacer = SweepPacer(1000, 0.001)
    pacer.record(pacer.size, 0.001)
    assert pacer.checkpoint_due()


def test_a_checkpoint_waits_until_the_next_batch_would_fill_the_log_past_its_share() -> None:
    pacer = SweepPacer(100, None)
    pacer.record(100, 0.001)
    pacer.checkpointed(int(LOG_PAGES * 0.25))  # 100 rows filled a quarter of the share
    due = []
    for _ in range(4):
        pacer.record(100, 0.001)
        due.append(pacer.checkpoint_due())
    assert due == [False, False, False, True]  # the 5th would take it past LOG_PAGES


def test_a_checkpoint_resets_the_rows_counted_since_the_last() -> None:
    pacer = SweepPacer(100, None)
    pacer.record(100, 0.001)
    pacer.checkpointed(LOG_PAGES)
    assert not pacer.checkpoint_due(last=True)


def test_the_sweep_s_end_checkpoints_what_its_last_batches_wrote() -> None:
    pacer = SweepPacer(100, None)
    pacer.record(100, 0.001)
    pacer.checkpointed(1)
    pacer.record(7, 0.001)
    assert pacer.checkpoint_due(last=True)


def test_a_log_that_does_not_say_its_size_is_checkpointed_after_every_batch() -> None:
    pacer = SweepPacer(100, None)
    pacer.record(100, 0.001)
    pacer.checkpointed(None)
    pacer.record(100, 0.001)
    assert pacer.checkpoint_due()
