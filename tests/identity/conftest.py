"""The identity suite serves its own app (login, "who am I", "your devices") through the
shell suite's ``served`` fixture."""

from __future__ import annotations

import pytest

from tests.identity.apps import build
from tests.shells.serving import (
    AppBuilder,
    served,  # noqa: F401 (a fixture)
)


@pytest.fixture
def app_builder() -> AppBuilder:
    """The identity app, on each shell."""
    return build
