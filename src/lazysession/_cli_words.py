"""The words and the progress bar of the ``lazysession`` command (``lazysession.cli``).

Rules:
- Counts read as people write them: ``1 expired session``, ``2,048 expired sessions``;
  sizes in binary units (``16.0 KiB``); ages in whole seconds.
- An error is shown as its first line, without SQLAlchemy's ``(module.Class)`` tags.
- Progress goes to the stream it is given (stderr): a bar redrawn in place on a terminal,
  and otherwise a plain line each time another tenth of the backlog is gone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TextIO


def plural(count: int, noun: str) -> str:
    """``1 expired session``, ``2 expired sessions``, with thousands separated."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def human_bytes(size: int) -> str:
    """``512 B``, ``16.0 KiB``, ``3.2 MiB``, ``1.5 GiB``."""
    if size < 1024:
        return f"{size:,} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:,.1f} {unit}"


def age(since: datetime, now: datetime) -> str:
    """``3 days, 2:01:00`` (whole seconds)."""
    return str(now - since).split(".")[0]


def _one_line(error: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's ``(module.Class)`` tags."""
    text = next((line for line in str(error).splitlines() if line.strip()), "")
    text = re.sub(r"\((?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*\) ", "", text)
    return text or type(error).__name__


class Progress:
    """Sweep progress on ``stream``: a bar redrawn in place on a terminal; otherwise a
    line each time another tenth of the backlog is done (and at the end)."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        """Report on ``stream`` the deletion of ``total`` sessions."""
        self.total = total
        self.stream = stream
        self.done = 0
        self.tty = stream.isatty()
        self._tenths_shown = 0
        self._drawn = False

    def __call__(self, done: int) -> None:
        """Show that ``done`` sessions are deleted so far."""
        self.done = done
        total = max(self.total, done)
        share = done / total if total else 1.0
        if self.tty:
            filled = round(self.WIDTH * share)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {share:4.0%}  {done:,} of {total:,} deleted")
            self._drawn = True
        elif int(share * 10) > self._tenths_shown or (done == total and not self._drawn):
            self._tenths_shown = int(share * 10)
            self._drawn = done == total
            self.stream.write(f"deleted {done:,} of {total:,} ({share:.0%})\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
