"""Open a store from a user-supplied location: a path, a ``file://`` URI or ``s3://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from castline.core.errors import StorageError
from castline.storage.base import Store
from castline.storage.s3_settings import S3Settings


def open_store(location: str | Path, s3: S3Settings | None = None) -> Store:
    """A ``Store`` for ``location``: ``output``, ``/abs/path``, ``file:///abs/path``, ``s3://bucket/prefix``.

    ``s3``: castline's S3 options (endpoint, addressing, multipart, retries); by default
    ``S3Settings.from_env()``. Credentials always come from boto3's standard chain. Opening makes
    no network call: the first read or write does.
    """
    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        from castline.storage.s3 import S3Store

        return S3Store(text, s3)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and text[1:3] in (":\\", ":/")):
        from castline.storage.local import LocalStore

        path = unquote(parsed.path) if parsed.scheme == "file" else text
        if not path:
            raise StorageError(f"empty storage location '{text}'")
        return LocalStore(Path(path))
    raise StorageError(f"unsupported storage location '{text}' (supported: a folder path, file:// or s3:// URI)")
