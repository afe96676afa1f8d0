"""The C allocator's settings that bound a render's memory (glibc only; nothing elsewhere).

glibc's malloc gives each thread that allocates while another holds an arena an arena of its own,
up to eight per core, and keeps what a thread frees in that arena for the thread's next
allocations. A render's threads (synthesis workers, Whisper's CTranslate2 replicas, Prefect's)
each kept the high-water mark of their own calls; freed memory is handed back between batches
and rounds of takes (``release_free_memory``), but two calls' working memory met on top of
every arena's slack.
"""

from __future__ import annotations

import functools
import os

M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (glibc's ``malloc.h``)."""
ARENAS = 2
"""Arenas a render's threads share. Two 10-minute renders with QA on 2 workers peaked at 798 and
836 MB with two against 892 and 898 MB with glibc's default (16 on 2 cores), synthesis taking
45.0 and 46.1 s against 44.0 and 44.9 s (``bench/memory.py``); a thread that finds its arena
locked waits for it."""


def release_free_memory() -> None:
    """Hand memory the process has freed back to the system (glibc's ``malloc_trim``). Freed
    blocks stay in the allocator's arenas, scattered between live ones, so RSS keeps the
    high-water mark of every arena: loading a model leaves its loading copies there (Whisper
    base: 116 MB), and a batch its working arrays."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


def share_allocator_arenas(arenas: int = ARENAS) -> bool:
    """Let the threads created from now on share at most ``arenas`` malloc arenas (glibc's
    ``mallopt(M_ARENA_MAX)``, as ``MALLOC_ARENA_MAX`` does). Takes effect only before the process
    has made eight arenas, so call it before starting worker threads. Does nothing (False) when
    ``MALLOC_ARENA_MAX`` is set, which is the user's choice, or without glibc."""
    if arenas < 1:
        raise ValueError(f"arenas must be ≥ 1, got {arenas}")
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _libc_function("mallopt")
    return mallopt is not None and mallopt(M_ARENA_MAX, arenas) == 1


@functools.cache
def _libc_function(name: str):
    import ctypes

    try:  # the process's own symbols: glibc's when it is the C library, else no such function
        return getattr(ctypes.CDLL(None), name, None)
    except OSError:
        return None
