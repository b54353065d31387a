"""Session values through a codec: each top-level value turned into what JSON can hold
when written, and back when loaded (Flask's tagged JSON); without one, values are as
JSON has them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ValueCodec(Protocol):
    """Turns each top-level session value into what JSON can hold and back (Flask's
    tagged JSON): ``dump`` on every value written, ``load`` on every value loaded."""

    def dump(self, value: Any) -> Any: ...

    def load(self, value: Any) -> Any: ...


def encode_values(codec: ValueCodec | None, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """Every top-level value of ``values`` as the codec writes it (None: as they are)."""
    if codec is None:
        return values
    return {key: codec.dump(value) for key, value in values.items()}


def decode_values(codec: ValueCodec | None, data: dict[str, Any]) -> dict[str, Any]:
    """Every top-level value of ``data`` as the codec reads it (None: as stored)."""
    if codec is None:
        return data
    return {key: codec.load(value) for key, value in data.items()}
