"""aevae's optional `cluster` extra: Ray, PostgreSQL's driver (psycopg2) and what MLflow's
basic-auth app needs. Everything else works without it, so the few places that need one of
these import it here, when asked for, and a missing one is a sentence naming the extra
rather than an ImportError. Light: imports nothing until asked.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from aevae.errors import AevaeError

EXTRA = "cluster"
INSTALL = f"pip install 'aevae[{EXTRA}]' (make install includes it)"


class MissingExtra(AevaeError):
    """A feature whose optional dependency is not installed."""


def require(module: str, feature: str) -> ModuleType:
    """`module`, imported; if it is not installed, MissingExtra saying that `feature` (e.g.
    "the Ray executor") needs the extra. A module that is there but fails to import is a
    broken installation, not a missing extra: its error goes on as it is."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module == exc.name or module.startswith(f"{exc.name}.")):
            raise
        raise MissingExtra(f"{feature} needs aevae's optional {EXTRA} extra: {INSTALL}.") from None
