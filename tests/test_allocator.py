"""The allocator settings a render makes: threads share two malloc arenas, and freed memory goes back.

Each case runs in a fresh Python process (an arena limit holds for the process's life), and counts
glibc's arenas from ``malloc_info``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="glibc only")

COUNT_ARENAS = """
import ctypes, sys, tempfile, threading
from castline.core.allocator import share_allocator_arenas
applied = share_allocator_arenas(int(sys.argv[1])) if sys.argv[1] != "-" else None
held, ready = [], threading.Barrier(7)
def work():
    held.append(bytearray(1 << 20))  # malloc'd in this thread: glibc gives it an arena
    ready.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
[thread.start() for thread in threads]
ready.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(applied, report.read().count("<heap nr="))
[thread.join() for thread in threads]
"""


def arenas(limit: str, **environment: str) -> tuple[str, int]:
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    result = subprocess.run([sys.executable, "-c", COUNT_ARENAS, limit], env={**env, **environment},
                            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    applied, count = result.stdout.split()
    return applied, int(count)


def test_threads_share_the_arenas_they_are_given():
    assert arenas("-")[1] >= 7  # glibc's default: each of the six threads its own, and the main one
    assert arenas("2") == ("True", 2)


def test_the_users_own_setting_wins():
    assert arenas("2", MALLOC_ARENA_MAX="4") == ("False", 4)


def test_a_limit_below_one_is_refused():
    from castline.core.allocator import share_allocator_arenas

    with pytest.raises(ValueError, match="arenas must be ≥ 1, got 0"):
        share_allocator_arenas(0)
