"""Is a store usable for a render? One small write and delete, before any work starts."""

from __future__ import annotations

import uuid
from pathlib import Path

from castline.core.errors import StorageError
from castline.storage.open import open_store
from castline.storage.s3_settings import S3Settings


def check_writable(location: str | Path, s3: S3Settings | None = None, *, field: str = "--out") -> None:
    """Raise ``StorageError`` (one line naming ``field`` and ``location``) unless an object can be
    written to and deleted from the store at ``location``: a folder that is a file or lies under
    one, a folder without write permission, an unreachable endpoint, a missing bucket or refused
    credentials all answer here instead of after orchestration has started."""
    try:
        store = open_store(location, s3)
        key = f"_cache/write-check-{uuid.uuid4().hex}"
        store.put_bytes(b"castline write check\n", key)
        store.delete(key)
    except StorageError as error:
        raise StorageError(f"{location} is not a writable store: {error.message}", field=field) from error
