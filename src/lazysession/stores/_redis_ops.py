"""The session operations of the Redis store, each written once, free of I/O.

An operation is a generator of commands (a Lua script on one key, or ``HGETALL``), each
answer sent back in. ``client_calls`` turns its commands into the client calls that carry
them out, the same for both sides; the store's async and sync sides each have one small
executor that makes those calls and hands the answers (or the failures) back.

Rules:
- One hash per session, ``<prefix><session_id>``: a field ``e`` with the expiry (ms since
  the epoch) and a field ``d:<key>`` with each session key's JSON value. Keeping keys in
  fields lets Redis merge a request's changes onto the stored copy itself.
- Every command touches one key: atomic, and legal on a cluster (a key never crosses
  slots). A rotation, which touches two, goes in steps that are each safe on their own:
  read the old key, create the new key (only if it does not exist) with the merge, then
  turn the old key into a marker (a hash with ``r``, the new key) if its version ``v``
  is still the one merged from (else merge again). Once the new key exists the login has
  succeeded: if retiring the old key fails, the old id lives on with only what it held
  before, and the browser moves to the new one. An ended session
  leaves a marker naming nothing; a logout that finds a marker naming a successor ends
  it and leaves a marker there too, so a rotation still between its two steps cannot
  create it afterwards. Markers expire after ``RETIRED_MEMORY`` seconds.
- A script goes as EVALSHA (the server caches it), as EVAL the first time. On a cluster
  it goes as plain EVAL (no NOSCRIPT round trip on every node), and a call that fails
  with an ``AttributeError`` is sent once more: redis-py's asyncio cluster client can hand
  a command a connection another task is tearing down, and fails so before anything is
  sent. A read is sent once more after a connection error (a pooled connection the
  server closed); a script only when the error came while its connection was still being
  made (it was never written), never after, by us or by redis-py: one that ran but whose
  answer was lost would run again and report its own first run as a conflict.
- A Redis error reaches the operation as a :class:`~lazysession.StoreError` naming the
  action (its text never: it may quote a key), which may know what it means.
- A session's size is measured as the JSON it encodes to, each key as JSON writes it
  (a quote or backslash in two bytes, a control character in two or six).
- The key carries its TTL, so Redis deletes expired sessions itself. Reads also check
  ``e`` against the store's clock, so a session is never handed out after its expiry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from .. import _json
from .._errors import SessionTooLarge, StoreError
from .._expiry import META_KEY, from_timestamp
from ._base import FOLLOW_ROTATIONS as _FOLLOW
from ._base import RETIRED_MEMORY, Changes, Merge, Record, describe_error, merge_onto, with_origin
from ._redis_lua import BLOCK, CREATE, END, REPLACE, RETIRE, SAVE, SHA, TOUCH, UPDATE

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Command:
    """One command on one key: a Lua script with its arguments, or (``script`` None)
    ``HGETALL``."""

    key: str
    script: str | None = None
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """One call of a redis-py client: ``client.<method>(*args)``. ``writes``: the call
    may write (a write in flight is given a little more time past the deadline)."""

    method: str
    args: tuple[Any, ...]
    writes: bool = False


@dataclass(frozen=True, slots=True)
class Batch:
    """Calls sent together in one pipeline (no transaction); the answer is their list."""

    calls: tuple[Call, ...]
    writes = False


@dataclass(slots=True)
class Walk:
    """The keys matching ``pattern``, by SCAN (never KEYS; redis-py walks every node of a
    cluster): each time it is asked, the answer is the next page of at most ``size`` keys,
    and an empty one at the end. ``keys`` is the executor's iterator, kept between pages."""

    pattern: str
    size: int
    keys: Any = None
    writes = False


Request = Call | Batch | Walk
Op = Generator[Command | Batch | Walk, Any, T]
"""An operation: its commands (or batches, or walks), each answer sent back in."""
Calls = Generator[Request, Any, T]
"""What an executor runs: client calls, each answer sent back in, each failure thrown in."""


@dataclass(slots=True)
class Operation(Generic[T]):
    """An operation not yet started, and what a failure says failed. ``bounded``: the
    whole call ends within the store's timeout (a walk of the keyspace takes as long as
    the keyspace does, each page bounded by the socket timeout)."""

    action: str
    steps: Op[T]
    bounded: bool = True


def operation(
    action: str, *, bounded: bool = True
) -> Callable[[Callable[P, Op[T]]], Callable[P, Operation[T]]]:
    """Makes a generator of commands an ``Operation`` named ``action``."""

    def decorate(steps: Callable[P, Op[T]]) -> Callable[P, Operation[T]]:
        @functools.wraps(steps)
        def begin(*args: P.args, **kwargs: P.kwargs) -> Operation[T]:
            return Operation(action, steps(*args, **kwargs), bounded)

        return begin

    return decorate


def client_calls(operation: Operation[T], cluster: bool) -> Calls[T]:
    """The client calls that carry out ``operation`` (see the rules above), for either
    side's executor."""
    steps = operation.steps
    try:
        step = next(steps)
        while True:
            try:
                if isinstance(step, Command):
                    answer = yield from _send(step, cluster)
                else:
                    answer = yield step
            except RedisError as error:
                failed = StoreError(f"{operation.action} failed: {describe_error(error)}")
                step = steps.throw(failed)
            else:
                step = steps.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result


def _send(command: Command, cluster: bool) -> Generator[Call, Any, Any]:
    """One command, as the calls that carry it out."""
    key, script = command.key, command.script
    if script is None:
        call = Call("hgetall", (key,))
    elif cluster:
        call = Call("eval", (script, 1, key, *command.args), writes=True)
    else:
        call = Call("evalsha", (SHA[script], 1, key, *command.args), writes=True)
    if script is None:  # a read: safe to send again on a new connection
        try:
            return (yield call)
        except (AttributeError, RedisConnectionError):
            return (yield call)
    if cluster:
        try:
            return (yield call)
        except AttributeError:  # a connection torn down under it, before anything was sent
            return (yield call)
        except RedisConnectionError as error:
            if not unsent(error):
                raise
            return (yield call)
    try:
        return (yield call)
    except NoScriptError:
        return (yield Call("eval", (script, 1, key, *command.args), writes=True))
    except RedisConnectionError as error:
        if not unsent(error):
            raise
        return (yield call)


_CONNECTING = frozenset(
    ("connect", "connect_check_health", "on_connect", "on_connect_check_health")
)


def unsent(error: BaseException) -> bool:
    """Whether a connection error came while its connection was still being made (the
    connect, its handshake): the command itself was never written, so it may be sent
    again. Told by where it was raised, since redis-py raises the same class either way."""
    frame = error.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if code.co_name in _CONNECTING and "redis" in code.co_filename:
            return True
        frame = frame.tb_next
    return False


EXPIRY = b"e"
ROTATED = b"r"
VERSION = b"v"
DATA = "d:"
_DATA_BYTES = DATA.encode()
_META_FIELD = DATA + META_KEY
_MEMORY_MS = RETIRED_MEMORY * 1000
_ATTEMPTS = 5


def fields(data: Mapping[str, Any]) -> list[str]:
    """Field/value pairs for HSET; every value is encoded (or refused) before any I/O."""
    pairs: list[str] = []
    for key, value in data.items():
        pairs += (DATA + key, _json.dumps_value(key, value))
    return pairs


_ESCAPED = re.compile(rb'["\\\x00-\x1f]')
"""Bytes JSON writes escaped in a key: quote, backslash, control characters."""


def decode(raw: Mapping[bytes, bytes], now_ms: int) -> Record | None:
    """The record for a hash as ``HGETALL`` hands it back (None: absent or expired)."""
    expiry = raw.get(EXPIRY)
    if not raw or expiry is None or int(expiry) <= now_ms:
        return None
    expires_at = from_timestamp(int(expiry) / 1000)
    if ROTATED in raw:
        return Record({}, expires_at, retired=True)
    data: dict[str, Any] = {}
    size = 1
    try:
        for field, value in raw.items():
            if field.startswith(_DATA_BYTES):
                name = field[len(_DATA_BYTES) :].decode("utf-8")
                data[name] = _json.loads_value(value)
                size += len(field) + 2 + len(value)
                if _ESCAPED.search(field) is not None:  # JSON writes these longer
                    size += len(_json.dumps_value(name, name).encode()) - len(field)
    except ValueError:
        return None  # a value we did not write: treat the session as absent
    return Record(data, expires_at, size=size)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


PAGE = 1000
"""Keys a walk asks for per SCAN, and checks per round trip."""


class RedisOps:
    """Every operation of the store, under its key prefix, timed by its clock
    (``now_ms``: milliseconds since the epoch)."""

    def __init__(self, prefix: str, now_ms: Callable[[], int]) -> None:
        self.prefix = prefix
        self.now_ms = now_ms

    @operation("loading a session")
    def read(self, sid: str) -> Op[Record | None]:
        raw = yield Command(self.prefix + sid)
        return decode(raw, self.now_ms())

    @operation("saving a session")
    def save(self, sid: str, data: Mapping[str, Any], expires_at: datetime) -> Op[None]:
        pairs = fields(data)
        expiry_ms = _ms(expires_at)
        ttl = expiry_ms - self.now_ms()
        if ttl > 0 and pairs:
            yield Command(self.prefix + sid, SAVE, (ttl, expiry_ms, *pairs))

    @operation("touching a session")
    def touch(self, sid: str, expires_at: datetime) -> Op[bool]:
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        if ttl <= 0:
            return False
        return bool((yield Command(self.prefix + sid, TOUCH, (ttl, expiry_ms, now_ms))))

    @operation("saving a session")
    def update(self, sid: str, changes: Changes, expires_at: datetime) -> Op[Merge]:
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        key = self.prefix + sid
        if ttl <= 0:
            return Merge.GONE
        if changes.replace:
            pairs = fields(changes.apply_to(None))
            done = yield Command(key, REPLACE, (ttl, expiry_ms, now_ms, *pairs))
            return Merge.APPLIED if done else Merge.GONE
        removed = [DATA + name for name in changes.removed]
        limit = changes.max_size or 0
        args = (ttl, expiry_ms, now_ms, limit, _META_FIELD, _MEMORY_MS, len(removed), *removed)
        done = yield Command(key, UPDATE, (*args, *fields(changes.set)))
        if done < 0:
            raise SessionTooLarge(-done, limit, "max_size")
        return (Merge.GONE, Merge.APPLIED, Merge.EMPTIED)[done]

    @operation("rotating a session")
    def rotate(self, old: str, new: str, changes: Changes, expires_at: datetime) -> Op[Merge]:
        now_ms, expiry_ms = self.now_ms(), _ms(expires_at)
        ttl = expiry_ms - now_ms
        if ttl <= 0:
            return Merge.GONE
        old_key, new_key = self.prefix + old, self.prefix + new
        marker = (now_ms, _MEMORY_MS)
        created = False
        for _ in range(_ATTEMPTS):
            raw = yield Command(old_key)
            stored = decode(raw, now_ms)
            if stored is None or stored.retired:
                if created:  # a logout won meanwhile: the new id ends too
                    yield Command(new_key, BLOCK, marker)
                return Merge.GONE
            text = merge_onto(_json.dumps(stored.data), changes).text
            if text is None:
                yield Command(old_key, END, marker)
                return Merge.EMPTIED
            pairs = fields(_json.loads(with_origin(text, old)) or {})
            if created:  # the new id is ours alone until the old one names it
                yield Command(new_key, SAVE, (ttl, expiry_ms, *pairs))
            elif (yield Command(new_key, CREATE, (ttl, expiry_ms, *pairs))):
                created = True
            else:
                return Merge.GONE  # the new id is taken: a logout blocked it
            version = raw.get(VERSION, b"0")
            try:
                retired = yield Command(old_key, RETIRE, (_MEMORY_MS, new_key, now_ms, version))
            except StoreError:
                return Merge.APPLIED  # the new id holds the session; the browser moves there
            if retired == 1:
                return Merge.APPLIED
            if retired == 0:
                yield Command(new_key, BLOCK, marker)
                return Merge.GONE
        raise StoreError("rotating a session failed: it kept changing under the rotation")

    @operation("deleting a session")
    def delete(self, sid: str) -> Op[None]:
        now_ms = self.now_ms()
        ending = (now_ms, _MEMORY_MS, _META_FIELD)
        kind, key = yield Command(self.prefix + sid, END, ending)
        for _ in range(_FOLLOW):
            if not key:
                return
            name = key.decode() if isinstance(key, bytes) else str(key)
            if kind in (b"r", "r"):  # the session the id was rotated to
                kind, key = yield Command(name, BLOCK, (now_ms, _MEMORY_MS))
            else:  # the id the session was rotated from, should it still be live
                kind, key = yield Command(self.prefix + name, END, ending)

    @operation("counting sessions", bounded=False)
    def count(self) -> Op[int]:
        """Sessions under the prefix, retired ids left out: O(n) in the keys of the
        database, with one pipelined round trip per page of keys."""
        walk, total = Walk(self.pattern(), PAGE), 0
        while True:
            keys = yield walk
            if not keys:
                return total
            retired = yield Batch(tuple(Call("hexists", (key, "r")) for key in keys))
            total += sum(1 for flag in retired if not flag)

    def pattern(self) -> str:
        """A SCAN pattern that matches the prefix literally."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"
