"""Decode any common audio file (WAV, FLAC, MP3, M4A, Ogg/Opus…) to float32 at its own rate."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from castline.core.errors import CastlineError

_RATE = re.compile(r"Audio: [^\n]*?(\d+) Hz")


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """``(samples, sample_rate)``: float32, ``(samples,)`` for mono or ``(channels, samples)``.

    libsndfile first (exact, fast); anything it cannot read goes through ffmpeg.
    """
    path = Path(path)
    if not path.is_file():
        raise CastlineError("audio file not found", source=str(path))
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return (audio[:, 0] if audio.shape[1] == 1 else np.ascontiguousarray(audio.T)), int(rate)
    except (soundfile.LibsndfileError, RuntimeError):
        return _decode_with_ffmpeg(path)


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    from castline.audio.encode import ffmpeg_exe

    probe = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)], capture_output=True,
                           text=True)
    match = _RATE.search(probe.stderr)
    channels = 2 if re.search(r"Audio: [^\n]*(stereo|2 channels)", probe.stderr) else 1
    if match is None:
        raise CastlineError("not an audio file ffmpeg can read", source=str(path))
    rate = int(match.group(1))
    decoded = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
                              "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "pipe:1"],
                             capture_output=True)
    if decoded.returncode != 0 or not decoded.stdout:
        raise CastlineError("could not decode audio", source=str(path))
    samples = np.frombuffer(decoded.stdout, dtype="<f4").copy()
    if channels > 1:
        samples = samples[: samples.size - samples.size % channels].reshape(-1, channels).T.copy()
    return samples, rate
