"""How the Redis store's operations reach Redis: the commands an operation yields
(``_redis_ops``), and ``client_calls``, which turns them into redis-py client calls, the
same for both sides' executors (``_redis``).

Rules:
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
- Commands sent together (``Commands``, one pipeline) that are all reads are sent once
  more after a connection error; a pipeline with a script never is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from .._errors import StoreError
from ._base import describe_error
from ._redis_lua import FIELDS, SHA

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Command:
    """One command on one key: a Lua script with its arguments, or (``script`` None)
    the client method ``method`` (``HGETALL`` unless named) on the key and ``args``: an
    idempotent command, sent once more after a connection error. ``writes``: such a
    command writes."""

    key: str
    script: str | None = None
    args: tuple[Any, ...] = ()
    method: str = "hgetall"
    writes: bool = False


@dataclass(frozen=True, slots=True)
class Commands:
    """Commands sent together in one pipeline (no transaction); the answer is their
    list. Read-only ones are sent once more after a connection error, never one with a
    script."""

    commands: tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Fields:
    """The same fields of many hashes (``HMGET`` each); the answer is their list. On one
    node it goes as one read-only script over all the keys (a cluster spreads them over
    slots: there, a pipeline), sent once more after a connection error."""

    keys: tuple[str, ...]
    fields: tuple[bytes, ...]


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
    writes: bool = False


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
Op = Generator[Command | Commands | Fields | Batch | Walk, Any, T]
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
                elif isinstance(step, Commands):
                    answer = yield from _send_together(step.commands, cluster)
                elif isinstance(step, Fields):
                    answer = yield from _read_fields(step, cluster)
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


def _call(command: Command, cluster: bool) -> Call:
    """The call that carries out one command (a script as EVAL on a cluster, else as
    EVALSHA)."""
    key, script = command.key, command.script
    if script is None:
        return Call(command.method, (key, *command.args), command.writes)
    if cluster:
        return Call("eval", (script, 1, key, *command.args), writes=True)
    return Call("evalsha", (SHA[script], 1, key, *command.args), writes=True)


def _send_together(commands: tuple[Command, ...], cluster: bool) -> Generator[Batch, Any, Any]:
    """Commands in one pipeline. On one node its scripts are loaded first, in the same
    pipeline (so no EVALSHA is answered NOSCRIPT), and their answers left out."""
    if not commands:
        return []
    calls = tuple(_call(command, cluster) for command in commands)
    if cluster:  # redis-py's cluster pipelines take EVAL only as a raw command
        calls = tuple(
            Call("execute_command", ("EVAL", *c.args), c.writes) if c.method == "eval" else c
            for c in calls
        )
    scripts = list(dict.fromkeys(c.script for c in commands if c.script is not None))
    if not scripts:  # idempotent commands: safe to send again on a new connection
        batch = Batch(calls, any(c.writes for c in calls))
        try:
            return (yield batch)
        except (AttributeError, RedisConnectionError):
            return (yield batch)
    loads = () if cluster else tuple(Call("script_load", (script,)) for script in scripts)
    try:
        answers = yield Batch(loads + calls, writes=True)
    except AttributeError:  # never sent again: some of it may have run
        raise RedisConnectionError("connection torn down under a pipeline") from None
    return answers[len(loads) :]


def _read_fields(step: Fields, cluster: bool) -> Generator[Request, Any, Any]:
    """Fields of many hashes: one script on one node, a pipeline on a cluster."""
    if not step.keys:
        return []
    if cluster:
        commands = tuple(Command(key, args=step.fields, method="hmget") for key in step.keys)
        return (yield from _send_together(commands, cluster))
    args = (len(step.keys), *step.keys, *step.fields)
    call = Call("evalsha", (SHA[FIELDS], *args))
    try:
        return (yield call)
    except NoScriptError:
        call = Call("eval", (FIELDS, *args))
    except (AttributeError, RedisConnectionError):
        pass  # a read: sent once more, on a new connection
    return (yield call)


def _send(command: Command, cluster: bool) -> Generator[Call, Any, Any]:
    """One command, as the calls that carry it out."""
    key, script = command.key, command.script
    if script is None:
        call = _call(command, cluster)
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
