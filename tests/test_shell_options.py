"""Every shell's constructor takes the shared options as ``ShellOptions`` writes them: the
same names, types and defaults, so the one definition there is the one users get."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from lazysession._middleware import MiddlewareOptions
from lazysession._shell_options import NAMES, ShellOptions
from lazysession.flask import LazySessionInterface

SHELLS: list[Any] = [MiddlewareOptions, LazySessionInterface]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell.__name__)
def test_each_shell_takes_every_shared_option_with_its_type_and_default(shell: Any) -> None:
    parameters = inspect.signature(shell.__init__).parameters
    for field in dataclasses.fields(ShellOptions):
        parameter = parameters[field.name]
        assert parameter.kind is not inspect.Parameter.POSITIONAL_ONLY
        assert (parameter.annotation, parameter.default) == (field.type, field.default)


def test_the_shared_options_are_named_once() -> None:
    assert len(set(NAMES)) == len(NAMES) == len(dataclasses.fields(ShellOptions))
