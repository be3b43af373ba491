"""App-wide services, kept in ``app.extensions["playground"]`` by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .interpreters import Interpreters
from .runs import Runs
from .sandbox.pool import LocalPool
from .store import Store


@dataclass
class Services:
    store: Store
    runs: Runs
    pool: LocalPool
    interpreters: Interpreters
    faults: bool = False  # PLAYGROUND_FAULTS=1: the hidden fault experiment may run (tests)


def services() -> Services:
    """The services of the app handling the current request (any request thread)."""
    return current_app.extensions["playground"]
