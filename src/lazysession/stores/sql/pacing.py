"""How the SQL store sweeps: batch after batch, each its own call, paced.

Rules:
- Each batch is one call of its own (its own timeout, its own short transaction), so a
  sweep of any size never holds a lock or a connection for long, and it can be stopped
  between batches.
- Where every writer waits behind a batch (SQLite: ``SQLDialect.sweep_budget``), each
  batch is sized from the last one's pace to take about the budget, and no rest
  follows; elsewhere batches are fixed and the sweep rests half as long as each batch
  took, leaving the database (and, on small machines, the CPU) to live traffic.
- Where the dialect checkpoints its write-ahead log between batches
  (``SQLDialect.after_sweep``), the checkpoint is a call of its own, outside the
  writers' turn and untimed by the pace, run when the log would otherwise grow past
  about ``LOG_PAGES`` since the last one (learnt from what each checkpoint found, per
  row deleted; until then, after every batch), and once after the last batch that
  deleted rows. The log stays well below SQLite's own auto-checkpoint (1,000 pages), so
  no save's commit checkpoints the sweep's pages, and each page the sweep dirties is
  written back once per checkpoint, not once per batch.
- ``full_speed`` (an operator's one-off purge) skips the rests; ``on_batch`` hears the
  running total after each batch, and ``on_swept`` the owned rows each batch deleted
  (asked for only then: without it, batches are the plain delete).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from .._base import OnSwept
from .runs import Call, Program, Rest
from .upkeep import Batch, UpkeepOps

SWEEP_REST = 0.5
"""The share of a batch's time the built-in sweep rests after it (fixed batches)."""
_SMALLEST_PACED_BATCH = 50
LOG_PAGES = 500
"""The write-ahead log pages a sweep lets build up between its checkpoints."""


class SweepPacer:
    """Batch sizes for a sweep. Without a ``budget`` every batch takes ``largest`` rows;
    with one, each batch is sized from the last one's pace to take about ``budget``
    seconds (never more than ``largest`` rows, never fewer than 50). And when to
    checkpoint: after the rows that fill about ``LOG_PAGES`` of the log."""

    __slots__ = ("budget", "largest", "pages_per_row", "size", "unchecked")

    def __init__(self, largest: int, budget: float | None) -> None:
        self.largest = largest
        self.budget = budget
        self.size = largest if budget is None else max(1, min(largest, 4 * _SMALLEST_PACED_BATCH))
        self.unchecked = 0
        """Rows deleted since the last checkpoint."""
        self.pages_per_row: float | None = None

    def checkpoint_due(self, last: bool = False) -> bool:
        """Whether to checkpoint now: the log has about ``LOG_PAGES`` since the last
        checkpoint (or its pace is not known yet), or, ``last``, the sweep is ending."""
        if self.unchecked == 0:
            return False
        if last or self.pages_per_row is None:
            return True
        return (self.unchecked + self.size) * self.pages_per_row > LOG_PAGES

    def checkpointed(self, pages: int | None) -> None:
        """Hear how many pages the log held at the checkpoint (None: it did not say)."""
        if pages is not None:
            self.pages_per_row = pages / self.unchecked if self.unchecked else None
        self.unchecked = 0

    def rest(self, seconds: float) -> float:
        """How long to pause after a batch that took ``seconds``."""
        return 0.0 if self.budget is not None else seconds * SWEEP_REST

    def record(self, deleted: int, seconds: float) -> None:
        """Hear how the last batch went; a short batch (the last one) teaches nothing."""
        self.unchecked += deleted
        if self.budget is None or deleted < self.size or seconds <= 0:
            return
        paced = int(deleted / seconds * self.budget)
        self.size = max(min(_SMALLEST_PACED_BATCH, self.largest), min(self.largest, paced))


def sweep(
    upkeep: UpkeepOps,
    now: datetime,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    full_speed: bool = False,
    on_swept: OnSwept | None = None,
) -> Program[int]:
    """Delete every row expired by ``now``; returns how many went. ``on_swept`` hears
    the owned rows of each batch that deleted any."""
    pacer = SweepPacer(batch_size, upkeep.dialect.sweep_budget)
    checkpoints = bool(upkeep.dialect.after_sweep)
    report = on_swept is not None
    total, after = 0, None
    while True:
        size, started = pacer.size, time.perf_counter()
        batch: Batch = yield Call(
            "sweeping expired sessions", upkeep.sweep_batch(now, after, size, report)
        )
        deleted, after = batch.deleted, batch.resume
        took = time.perf_counter() - started
        pacer.record(deleted, took)
        total += deleted
        if batch.owned and on_swept is not None:
            on_swept(batch.owned)
        if on_batch is not None:
            on_batch(total)
        last = deleted < size
        if checkpoints and pacer.checkpoint_due(last):
            pages = yield Call("checkpointing after sweeping", upkeep.checkpoint())
            pacer.checkpointed(pages)
        if last:
            return total
        yield Rest(0.0 if full_speed else pacer.rest(took))
