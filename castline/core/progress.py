"""Progress events from library stages to whoever displays them (the CLI's rich bars).

Listeners are process-local and optional: with none installed, ``emit`` does nothing.
"""

from __future__ import annotations

import os
import signal
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
        _failpoint(stage, advance)
    event = ProgressEvent(stage, advance, total, detail)
    for listener in listeners:
        listener(event)


_done: dict[str, int] = {}


def _failpoint(stage: str, advance: int) -> None:
    """``CASTLINE_KILL_AT=STAGE:N``: SIGKILL this process once N units of STAGE are done.

    A test failpoint: the resume tests use it to die at an exact point (after the 3rd chunk
    stored, half-way through stitching, after the first object of a release uploaded) exactly
    as ``kill -9`` would, with no clean-up of any kind. Unset (always, outside tests), it costs
    one dictionary lookup per event.
    """
    target = os.environ.get("CASTLINE_KILL_AT")
    if not target or not advance:
        return
    name, _, count = target.partition(":")
    if name != stage:
        return
    _done[stage] = _done.get(stage, 0) + advance
    if _done[stage] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
