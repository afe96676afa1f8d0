"""The storage interface: keys are relative POSIX paths under a root; writes are atomic."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from castline.errors import StorageError

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
