"""Pitch-preserving time-stretch through ffmpeg: rubberband when the ffmpeg build has it
(better on speech), else ``atempo`` (WSOLA, in every ffmpeg). Audio goes through pipes as
float32; nothing touches the disk."""

from __future__ import annotations

import functools
import subprocess

import numpy as np

from castline.audio.encode import ffmpeg_exe
from castline.core.errors import CastlineError


@functools.lru_cache(maxsize=1)
def has_rubberband() -> bool:
    completed = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, text=True,
                               timeout=60)
    return any(line.split()[1:2] == ["rubberband"] for line in completed.stdout.splitlines() if line.strip())


def stretcher_name(choice: str = "auto") -> str:
    """The stretcher ``choice`` ("auto", "rubberband", "atempo") resolves to here."""
    if choice == "auto":
        return "rubberband" if has_rubberband() else "atempo"
    if choice == "rubberband" and not has_rubberband():
        raise CastlineError("--stretcher rubberband: this ffmpeg has no rubberband filter (use atempo)")
    return choice


def time_stretch(audio: np.ndarray, sample_rate: int, factor: float, stretcher: str = "auto") -> np.ndarray:
    """``audio`` (float32 mono) played ``factor``× faster at the same pitch: about ``len / factor`` samples."""
    audio = np.asarray(audio, dtype=np.float32)
    if factor == 1.0 or audio.size == 0:
        return audio.copy()
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"stretch factor must be 0.5..2.0, got {factor}")
    name = stretcher_name(stretcher)
    if name == "rubberband":
        # Speech settings: crisp transients, formants kept, the finer (slower) engine.
        audio_filter = f"rubberband=tempo={factor:.6f}:transients=crisp:formant=preserved:pitchq=quality"
    else:
        audio_filter = f"atempo={factor:.6f}"
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar", str(sample_rate),
               "-ac", "1", "-i", "pipe:0", "-af", audio_filter, "-f", "f32le", "-ar", str(sample_rate), "-ac", "1",
               "pipe:1"]
    completed = subprocess.run(command, input=audio.tobytes(), capture_output=True, timeout=300)
    if completed.returncode != 0:
        raise CastlineError(f"ffmpeg {name} failed: {completed.stderr.decode(errors='replace').strip()[:200]}")
    return np.frombuffer(completed.stdout, dtype="<f4").astype(np.float32)
