"""Open a store from a user-supplied location: a path, ``file://`` URI (S3 arrives next)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from castline.errors import StorageError
from castline.storage.base import Store


def open_store(location: str | Path) -> Store:
    """A ``Store`` for ``location``: ``output``, ``/abs/path``, ``file:///abs/path``."""
    from castline.storage.local import LocalStore

    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and text[1:3] in (":\\", ":/")):
        path = unquote(parsed.path) if parsed.scheme == "file" else text
        if not path:
            raise StorageError(f"empty storage location '{text}'")
        return LocalStore(Path(path))
    raise StorageError(f"unsupported storage location '{text}' (supported here: a folder path or file:// URI)")
