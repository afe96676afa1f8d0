"""The process's one table of engine locks.

Engines measured slower when several threads run them at once (``thread_parallel`` False in
their capabilities) are serialised per engine name, whoever calls them: render chunks, render
windows and dub takes all take the same lock, so a render and a dub in one process queue for
the engine instead of fighting over the cores.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def engine_lock(engine) -> AbstractContextManager:
    """A context manager to hold while ``engine`` synthesises: its name's lock, or nothing for
    engines that run well in parallel threads."""
    if engine.capabilities.thread_parallel:
        return nullcontext()
    with _GUARD:
        return _LOCKS.setdefault(engine.name, threading.Lock())
