"""Writing a file (or a folder of files) so that a reader sees the old one or the whole new one,
never a part.

Every atomic write in castline goes through ``atomic_path``: the data goes to a temporary
name beside the target (``.castline-tmp-<host>.<pid>-<random>-<name>``), is flushed, then
renamed over the target with ``os.replace``; on any failure the temporary file is removed.
A writer killed with SIGKILL leaves its temporary file behind: the name says which host and
process wrote it, so clean-up (``castline.storage.local``) can tell a dead writer's leftovers
from a live writer's file at once.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMP_MARK = ".castline-tmp-"
"""Every temporary file name starts with this; listings skip such names."""
HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def writer() -> str:
    """This process as written into its temporary file names: ``<host>.<pid>``."""
    return f"{HOST}.{os.getpid()}"


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` carrying this writer's host and PID."""
    return target.parent / f"{TEMP_MARK}{writer()}-{uuid.uuid4().hex[:16]}-{target.name}"


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; write it completely (and flush it) inside the
    block. On a normal exit it replaces ``target`` in one rename; on an exception it is removed
    and ``target`` is left as it was. The folder must exist."""
    target = Path(target)
    temp = temp_path(target)
    try:
        yield temp
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (flushed to disk before the rename)."""
    with atomic_path(target) as temp, open(temp, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield a new empty folder beside ``target`` (its parents are made); fill it inside the block.
    On a normal exit it is renamed to ``target`` in one step, so a reader sees the whole folder or
    none. When ``target`` exists by then (another writer stored it first), or on an exception, the
    temporary folder is removed and ``target`` is left as it was. ``OSError`` when the folder
    cannot be made or renamed."""
    target = Path(target)
    temp = temp_path(target)
    temp.mkdir(parents=True)
    try:
        yield temp
        try:
            os.rename(temp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
