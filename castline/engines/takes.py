"""One content-addressed cache of engine takes in a store, shared by render chunks and dub takes.

A take lives under ``<prefix>/<key[:2]>/<key>.flac`` (24-bit mono FLAC at the rate it was
given) with its metadata beside it as ``<key>.json``. The metadata object is written last, so
its presence marks the take complete: a writer killed between the two leaves audio that is
never read and is simply written again. ``key`` is a content hash of everything that shapes the
take (the callers' ``ChunkJob.key`` and ``castline.dub.voicing.take_key``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from castline.audio.chunkfile import read_chunk, write_chunk
from castline.storage import ObjectInfo, Store


@dataclass(frozen=True)
class StoredTake:
    """A take just written: its audio object, and (when asked for) the samples the cache holds."""

    info: ObjectInfo
    audio: np.ndarray | None = None


@dataclass(frozen=True)
class TakeCache:
    """Takes under ``prefix`` in whichever store a call names."""

    prefix: str

    def audio_key(self, key: str) -> str:
        return f"{self.prefix}/{key[:2]}/{key}.flac"

    def meta_key(self, key: str) -> str:
        return f"{self.prefix}/{key[:2]}/{key}.json"

    def find(self, store: Store, key: str) -> dict | None:
        """The metadata of a complete take (audio and metadata both stored), else None; a
        metadata object that does not parse counts as missing (the take is made again)."""
        if not store.exists(self.meta_key(key)) or not store.exists(self.audio_key(key)):
            return None
        try:
            meta = json.loads(store.get_bytes(self.meta_key(key)))
        except ValueError:
            return None
        return meta if isinstance(meta, dict) else None

    def read(self, store: Store, key: str) -> tuple[np.ndarray, int]:
        """A stored take's samples (float32 mono) and rate."""
        with store.local_copy(self.audio_key(key)) as path:
            return read_chunk(path)

    def put_audio(self, store: Store, key: str, audio: np.ndarray, sample_rate: int, *,
                  read_back: bool = False) -> StoredTake:
        """Store the take's audio (first of the two writes). ``read_back``: also return the
        samples as the cache holds them (24-bit), so a caller places exactly what a later
        run that reuses the take will read."""
        with tempfile.TemporaryDirectory(prefix="castline-take-") as folder:
            path = Path(folder) / "take.flac"
            write_chunk(path, audio, sample_rate)
            info = store.put_file(path, self.audio_key(key))
            held = read_chunk(path)[0] if read_back else None
        return StoredTake(info, held)

    def put_meta(self, store: Store, key: str, meta: dict) -> None:
        """Store the take's metadata (sorted JSON), which marks it complete: call it last."""
        store.put_bytes(json.dumps(meta, sort_keys=True).encode(), self.meta_key(key))
