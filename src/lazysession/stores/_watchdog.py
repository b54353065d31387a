"""A blocking connection's liveness, told without a round trip, and the cut of one
that does not answer.

Rules:
- :func:`looks_dead` tells an idle pooled connection its server closed by a zero-timeout
  poll of its socket: no I/O beyond that.
- The :class:`Watchdog` shuts down the socket of a blocking connection whose call passed
  its deadline (a driver without a read timeout then fails with a connection error), but
  never cuts a write in flight while its call allows it more time (``_limits``): it
  looks again every ``RECANCEL`` seconds. The descriptor stays the driver's to close.
"""

from __future__ import annotations

import heapq
import itertools
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._limits import _Call

RECANCEL = 0.05
"""Seconds between the checks (and cancellations) of a call past its deadline."""


def looks_dead(driver_connection: Any) -> bool:
    """Whether an idle pooled connection has been closed by its server (or has data
    nobody asked for, which for an idle connection means the same): its transport is
    closed, or its socket reads as ready. No I/O beyond a zero-timeout poll."""
    transport = getattr(driver_connection, "_transport", None)
    if transport is None:
        writer = getattr(driver_connection, "_writer", None)
        transport = getattr(writer, "transport", None)
        reader = getattr(driver_connection, "_reader", None)
        if reader is not None and (reader.at_eof() or getattr(reader, "_buffer", b"")):
            return True
    if transport is not None:
        if transport.is_closing():
            return True
        sock = transport.get_extra_info("socket")
        fd = -1 if sock is None else sock.fileno()
    else:
        is_closed = getattr(driver_connection, "is_closed", None)
        if callable(is_closed) and is_closed():
            return True
        fd = _fileno(driver_connection)
    return fd >= 0 and _readable(fd)


def _fileno(connection: Any) -> int:
    fileno = getattr(connection, "fileno", None)
    if callable(fileno):
        try:
            return int(fileno())
        except Exception:
            return -1
    sock = getattr(connection, "_sock", None)  # pymysql
    if isinstance(sock, socket.socket):
        return sock.fileno()
    return -1


if hasattr(select, "poll"):

    def _readable(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))

else:  # pragma: no cover - Windows

    def _readable(fd: int) -> bool:
        return bool(select.select([fd], [], [], 0)[0])


# -- cutting a blocking connection that does not answer ---------------------------------------


class Watchdog:
    """Shuts down the socket of a blocking connection whose call passed its deadline, so
    a driver without a read timeout (psycopg) fails with a connection error instead of
    waiting forever. One thread for the process, started on first use."""

    _lock = threading.Lock()
    _instance: Watchdog | None = None

    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, tuple[Any, _Call | None]] = {}
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._run, name="lazysession-watchdog", daemon=True)
        self._thread.start()

    @classmethod
    def instance(cls) -> Watchdog:
        if cls._instance is None:
            with cls._lock:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance

    def arm(self, connection: Any, seconds: float, call: _Call | None = None) -> int:
        """Cut ``connection`` in ``seconds`` unless disarmed (or, past that, as soon as
        ``call`` allows it); returns the ticket."""
        ticket = next(self._ids)
        due = time.monotonic() + seconds
        with self._wake:
            self._armed[ticket] = (connection, call)
            heapq.heappush(self._heap, (due, ticket))
            if self._heap[0][1] == ticket:
                self._wake.notify()
        return ticket

    def disarm(self, ticket: int) -> None:
        with self._wake:
            self._armed.pop(ticket, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][1] not in self._armed or heap[0][0] <= now):
                    _, ticket = heapq.heappop(heap)
                    armed = self._armed.get(ticket)
                    if armed is None:
                        continue
                    connection, call = armed
                    if call is None or call.may_cut():
                        del self._armed[ticket]
                        _cut(connection)
                    else:  # a write in flight, or answered: look again shortly
                        heapq.heappush(heap, (now + RECANCEL, ticket))
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


def _cut(connection: Any) -> None:
    """Shut the connection's socket down (read and write): its driver's wait ends with
    an error. The descriptor stays open, owned by the driver, which closes it."""
    if getattr(connection, "closed", False):
        return
    fd = _fileno(connection)
    if fd < 0:
        return
    try:
        with socket.socket(fileno=_dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _dup(fd: int) -> int:
    import os

    return os.dup(fd)
