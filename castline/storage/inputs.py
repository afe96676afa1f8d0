"""Inputs (a script file, a voice folder, a voices library) from a local path or from ``s3://``."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import unquote, urlparse

from castline.core.errors import StorageError
from castline.storage.s3_settings import S3Settings


@contextmanager
def fetch_input(location: str | Path, s3: S3Settings | None = None) -> Iterator[Path]:
    """A local path holding ``location`` for the duration of the ``with`` block.

    A plain path or ``file://`` URI is yielded as it is (nothing is copied or checked). For
    ``s3://bucket/key``: the object ``key`` if there is one, downloaded under its own name (so
    ``.yaml``/``.txt`` still tell the script format); otherwise every object under ``key/``,
    downloaded into a folder named like the prefix's last segment (a voice folder, or a whole
    voices library). A trailing ``/`` asks for the folder directly. Objects castline wrote are
    checked against their recorded SHA-256. The copies are deleted when the block ends.
    """
    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme != "s3":
        yield Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(text)
        return
    from castline.storage.s3 import S3Store, parse_s3_uri

    bucket, key = parse_s3_uri(text)
    store = S3Store(f"s3://{bucket}", s3)
    folder = Path(tempfile.mkdtemp(prefix="castline-input-"))
    try:
        if key and not text.endswith("/") and store.exists_object(key):
            yield store.download_object(key, folder / PurePosixPath(key).name)
            return
        target = folder / (PurePosixPath(key).name if key else bucket)
        names = list(store.list_objects(f"{key}/" if key else ""))
        if not names:
            raise StorageError(f"nothing found at {text} (no object, and no objects under it)")
        for name in names:
            relative = name[len(key) + 1:] if key else name
            parts = relative.split("/")
            if any(part in ("", ".", "..") or "\\" in part for part in parts):
                raise StorageError(f"refusing to download s3://{bucket}/{name}: its name would leave the folder")
            path = target.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            store.download_object(name, path)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)
