"""Chunk audio on disk: FLAC, 24-bit, mono, at the project rate (lossless to −144 dBFS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile


def write_chunk(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_24", format="FLAC")


def read_chunk(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the file's sample rate."""
    audio, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    if audio.ndim != 1:
        audio = audio.mean(axis=1).astype(np.float32)
    return audio, sample_rate
