"""The official EBU Tech 3341 test files (in ``shared/ebu-tech3341`` beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def ebu_dir() -> Path:
    """Folder of the official EBU Tech 3341 files, or skip the test."""
    shared = os.environ.get("CASTLINE_SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared"
    folder = base / "ebu-tech3341"
    if not folder.is_dir():
        pytest.skip(f"EBU Tech 3341 files not found at {folder} (set CASTLINE_SHARED_DIR to the "
                    "folder holding ebu-tech3341/)")
    return folder


def read_ebu(number: int) -> tuple[np.ndarray, int]:
    """File ``number`` as float32 ``(channels, samples)`` and its sample rate."""
    import soundfile as sf

    matches = sorted(ebu_dir().glob(f"seq-3341-{number}-*bit.wav"))
    if not matches:
        pytest.skip(f"EBU Tech 3341 file {number} missing from {ebu_dir()}")
    data, rate = sf.read(matches[0], always_2d=True, dtype="float32")
    return np.ascontiguousarray(data.T), rate
