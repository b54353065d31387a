"""``python -m lazysession``: the ``lazysession`` command (see :mod:`lazysession.cli`)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
