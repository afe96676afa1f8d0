"""Content hashes: the cache keys that make every stage idempotent."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path


def canonical_json(value: object) -> bytes:
    """Stable bytes for a JSON-able value (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(value: object) -> str:
    """SHA-256 (hex) of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def derive_seed(seed: int, key_material: str) -> int:
    """A per-chunk seed from the episode seed and the chunk's content (0 ≤ seed < 2**31)."""
    digest = hashlib.sha256(f"{seed}:{key_material}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@functools.lru_cache(maxsize=32)
def file_digest(path: str) -> str:
    """Short (16 hex) SHA-256 of a model file, cached per process: part of engine identities."""
    return sha256_file(path)[:16]
