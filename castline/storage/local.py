"""A folder on a local disk as an object store (the default: ``output/``)."""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from castline.core.atomic import HOST, TEMP_MARK as _TEMP_MARK, atomic_path
from castline.core.errors import StorageError
from castline.storage.base import ObjectInfo, Store, validate_key


def _writer_is_dead(name: str) -> bool:
    """True when a temporary file's writer ran on this host and its process is gone."""
    writer = name[len(_TEMP_MARK):].split("-", 1)[0]
    host, _, pid = writer.rpartition(".")
    if host != HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LocalStore(Store):
    """Objects are files under ``root``; each write goes to a temporary name, then is renamed
    (``castline.core.atomic``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root_uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"storage key '{key}' escapes the store root")
        return path

    def put_file(self, local_path: str | Path, key: str) -> ObjectInfo:
        target = self._path(key)
        digest = hashlib.sha256()
        size = 0
        with self._atomic_target(target) as temp, open(local_path, "rb") as source, open(temp, "wb") as sink:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                sink.write(block)
            sink.flush()
            os.fsync(sink.fileno())
        return ObjectInfo(key=key, uri=target.as_uri(), sha256=digest.hexdigest(), bytes=size)

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        target = self._path(key)
        with self._atomic_target(target) as temp, open(temp, "wb") as sink:
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())
        return ObjectInfo(key=key, uri=target.as_uri(), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))

    @contextmanager
    def _atomic_target(self, target: Path) -> Iterator[Path]:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create folder {target.parent}: {error.strerror}") from error
        # The writer's host and PID are in the temporary name (castline.core.atomic): clean-up
        # can tell a dead writer's leftovers from a live writer's file at once.
        try:
            with atomic_path(target) as temp:
                yield temp
        except OSError as error:
            raise StorageError(f"cannot write {target}: {error.strerror}") from error

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as error:
            raise StorageError(f"object not found: {self.uri_for(key)}") from error

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"object not found: {self.uri_for(key)}")
        yield path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def info(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"object not found: {self.uri_for(key)}")
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return ObjectInfo(key=key, uri=path.as_uri(), sha256=digest.hexdigest(), bytes=path.stat().st_size)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.exists():
            return iter(())
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(_TEMP_MARK):
                keys.append(path.relative_to(self.root).as_posix())
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_file():
            path.unlink()

    def cleanup_incomplete_uploads(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        """Delete temporary files that a killed write left behind (never listed, never read)."""
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in base.rglob(f"{_TEMP_MARK}*"):
            try:
                if path.is_file() and (path.stat().st_mtime <= cutoff or _writer_is_dead(path.name)):
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
