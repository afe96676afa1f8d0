"""The storage interface: keys are relative POSIX paths under a root; writes are atomic."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from castline.core.errors import StorageError

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$")


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object: its key, full URI, SHA-256 (hex) and size (bytes)."""

    key: str
    uri: str
    sha256: str
    bytes: int


def validate_key(key: str) -> str:
    """Reject any key that could escape the store's root or hide files.

    Every segment starts with a letter or digit ('_cache' is the one reserved exception,
    written only by castline), so ``..``, ``.``, absolute paths, backslashes and empty
    segments are all refused.
    """
    if not isinstance(key, str) or not key:
        raise StorageError("empty storage key")
    segments = key.split("/")
    for index, segment in enumerate(segments):
        if index == 0 and segment == "_cache":
            continue
        if not _SEGMENT.match(segment):
            raise StorageError(f"invalid storage key '{key}' (segment '{segment}')")
    return key


class Store(ABC):
    """Where castline keeps chunk audio and publishes episodes."""

    root_uri: str

    def uri_for(self, key: str) -> str:
        return f"{self.root_uri.rstrip('/')}/{validate_key(key)}"

    @abstractmethod
    def put_file(self, local_path: str | Path, key: str) -> ObjectInfo:
        """Upload/copy a local file to ``key`` atomically (readers never see a partial object)."""

    @abstractmethod
    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        """Write ``data`` to ``key`` atomically."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read a whole (small) object."""

    @abstractmethod
    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A readable local path holding the object for the duration of the ``with`` block."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if a complete object is stored at ``key``."""

    @abstractmethod
    def info(self, key: str) -> ObjectInfo:
        """Key, URI, SHA-256 and size of a stored object."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """Copy ``src_key`` to ``dst_key`` atomically (stores that can copy server-side override this)."""
        with self.local_copy(src_key) as path:
            return self.put_file(path, dst_key)

    def read_back_sha256(self, key: str) -> str:
        """SHA-256 of the stored bytes, read back now (``info`` may trust recorded metadata)."""
        digest = hashlib.sha256()
        with self.local_copy(key) as path, open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def verify(self, key: str, sha256: str) -> None:
        """Raise ``StorageError`` unless the stored bytes of ``key`` hash to ``sha256``."""
        actual = self.read_back_sha256(key)
        if actual != sha256.lower():
            raise StorageError(f"checksum mismatch for {self.uri_for(key)}: expected sha256 {sha256[:16]}…, "
                               f"stored object has {actual[:16]}…")

    def cleanup_incomplete_uploads(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        """Remove leftovers of writes that were killed more than ``older_than_s`` ago (invisible to
        readers either way); returns how many. Call at the start of a render."""
        return 0
