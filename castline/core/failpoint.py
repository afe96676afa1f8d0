"""A test failpoint: ``CASTLINE_KILL_AT=STAGE:N`` SIGKILLs the process once N units of STAGE are done.

The resume tests use it to die at an exact point (after the 3rd chunk stored, half-way through
stitching, after the first object of a release uploaded) exactly as ``kill -9`` would, with no
clean-up of any kind. It is a progress listener, installed only when the command line starts
with the variable set (``install_from_environment``); without it, progress events carry no test
code at all. It acts in the process that installed it (the CLI's, where the flow's thread
workers emit); Dask worker processes do not install it.
"""

from __future__ import annotations

import os
import signal
import threading

from castline.core.progress import ProgressEvent, subscribe

ENVIRONMENT_VARIABLE = "CASTLINE_KILL_AT"


class KillAt:
    """A listener that SIGKILLs this process once ``count`` units of ``stage`` are reported done."""

    def __init__(self, stage: str, count: int) -> None:
        self.stage = stage
        self.count = count
        self.done = 0
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str) -> "KillAt":
        """``STAGE:N`` (``STAGE`` alone means after the first unit)."""
        stage, _, count = text.partition(":")
        if not stage or (count and not count.isdigit()):
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be STAGE:N, got {text!r}")
        return cls(stage, int(count or 1))

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage != self.stage or not event.advance:
            return
        with self._lock:
            self.done += event.advance
            reached = self.done >= self.count
        if reached:
            os.kill(os.getpid(), signal.SIGKILL)


_installed = False
_install_lock = threading.Lock()


def install_from_environment() -> bool:
    """Install the failpoint when ``CASTLINE_KILL_AT`` is set (once per process); True if installed."""
    global _installed
    target = os.environ.get(ENVIRONMENT_VARIABLE)
    if not target:
        return False
    with _install_lock:
        if not _installed:
            subscribe(KillAt.parse(target))
            _installed = True
    return True
