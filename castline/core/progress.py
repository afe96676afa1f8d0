"""Progress events from library stages to whoever displays them (the CLI's rich bars).

Listeners are process-local and optional: with none installed, ``emit`` does nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True)
class ProgressEvent:
    """``advance`` units of work done in ``stage``; ``total`` set when the stage learns its size."""

    stage: str
    advance: int = 0
    total: int | None = None
    detail: str = ""


Listener = Callable[[ProgressEvent], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def emit(stage: str, advance: int = 0, total: int | None = None, detail: str = "") -> None:
    with _lock:
        listeners = list(_listeners)
    event = ProgressEvent(stage, advance, total, detail)
    for listener in listeners:
        listener(event)


def subscribe(listener: Listener) -> None:
    """Install ``listener`` for the rest of the process (``listening`` installs one for a block)."""
    with _lock:
        _listeners.append(listener)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
