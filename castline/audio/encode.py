"""Encode the master with ffmpeg and verify each file by decoding and measuring it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from castline.dsp.compliance import compliance_problems, loudness_error_db, peak_excess_db
from castline.dsp.loudness import LoudnessMeter, LoudnessReading
from castline.core.errors import DeliveryError
from castline.dsp.presets import Preset

MAX_ATTEMPTS = 3
DECODE_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class Codec:
    """How one delivery format is made; ``sample_rate`` None keeps the master's rate (Hz)."""

    extension: str
    args: tuple[str, ...]
    sample_rate: int | None
    lossy: bool


CODECS: dict[str, Codec] = {
    "wav": Codec("wav", (), None, lossy=False),
    "flac": Codec("flac", ("-c:a", "flac", "-compression_level", "5"), None, lossy=False),
    # 44.1 kHz CBR 192k: plays everywhere and is what audiobook platforms (ACX) require.
    "mp3": Codec("mp3", ("-c:a", "libmp3lame", "-b:a", "192k", "-ar", "44100"), 44100, lossy=True),
    "opus": Codec("opus", ("-c:a", "libopus", "-b:a", "64k", "-vbr", "on"), 48000, lossy=True),
    # AAC in MP4: what Apple Podcasts takes besides MP3; m4b is the audiobook flavour (chapters
    # and cover are added by castline.delivery.tags). faststart: players can start streaming.
    "m4a": Codec("m4a", ("-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-movflags", "+faststart"), 44100,
                 lossy=True),
    "m4b": Codec("m4b", ("-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-movflags", "+faststart"), 44100,
                 lossy=True),
}


@dataclass(frozen=True)
class EncodedFile:
    """A delivered file, measured after decoding, and the attempts it took to pass."""

    format: str
    path: str
    reading: LoudnessReading
    attempts: int
    corrections: tuple[str, ...]


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode_file(master_path: str | Path, fmt: str, out_path: str | Path) -> None:
    """Encode ``master_path`` to ``out_path`` in ``fmt`` (the master is WAV: 'wav' is a copy)."""
    codec = CODECS[fmt]
    if fmt == "wav":
        shutil.copyfile(master_path, out_path)
        return
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(master_path),
               "-map_metadata", "-1", *codec.args, str(out_path)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise DeliveryError(f"ffmpeg could not encode {fmt}: {completed.stderr.strip().splitlines()[-1:]}")


def measure_file(path: str | Path, sample_rate: int, channels: int) -> LoudnessReading:
    """Decode ``path`` with ffmpeg (float32 at ``sample_rate`` Hz) and meter it, block by block."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
               "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(sample_rate), "pipe:1"]
    meter = LoudnessMeter(sample_rate, channels)
    frame_bytes = 4 * channels
    leftover = b""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        while True:
            data = process.stdout.read(DECODE_BLOCK_BYTES)
            if not data:
                break
            data = leftover + data
            usable = len(data) - len(data) % frame_bytes
            leftover = data[usable:]
            samples = np.frombuffer(data[:usable], dtype="<f4")
            meter.process(samples if channels == 1 else samples.reshape(-1, channels).T)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise DeliveryError(f"ffmpeg could not decode {Path(path).name}: {stderr.strip()[:200]}")
    return meter.result()


Remaster = Callable[[float, float], Path]
"""``remaster(gain_offset_db, ceiling_dbtp)`` → a new master file with those corrections."""
AfterEncode = Callable[[Path], None]
"""``after_encode(path)`` runs on each encoded file before it is measured (e.g. writes its tags)."""


def deliver(master_path: str | Path, master_reading: LoudnessReading, fmt: str, out_path: str | Path,
            preset: Preset, ceiling_dbtp: float, remaster: Remaster,
            after_encode: AfterEncode | None = None) -> EncodedFile:
    """Encode, decode, measure; if the file leaves its spec, correct the master and re-encode.

    Lossy codecs shift loudness and raise true peak (measured: MP3 −0.3 LU, Opus +0.24 dB TP),
    so the check is on the decoded file, never on the master alone. ``after_encode`` (tagging)
    runs before the measurement, so the reading is that of the file as delivered.
    """
    codec = CODECS[fmt]
    source = Path(master_path)
    gain_offset, ceiling = 0.0, ceiling_dbtp
    corrections: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        encode_file(source, fmt, out_path)
        if after_encode is not None:
            after_encode(Path(out_path))
        if fmt == "wav":
            reading = master_reading
        else:
            reading = measure_file(out_path, codec.sample_rate or master_reading.sample_rate,
                                   master_reading.channels)
        problems = compliance_problems(reading, preset)
        if not problems:
            return EncodedFile(fmt, str(out_path), reading, attempt, tuple(corrections))
        if attempt == MAX_ATTEMPTS:
            break
        excess = peak_excess_db(reading, preset)
        if excess > 0:
            ceiling -= excess + 0.1
        error = loudness_error_db(reading, preset)
        if abs(error) > preset.tolerance_lu / 2:
            gain_offset += error
        corrections.append(f"attempt {attempt}: {'; '.join(problems)} -> gain offset {gain_offset:+.2f} dB, "
                           f"ceiling {ceiling:.2f} dBTP")
        source = remaster(gain_offset, ceiling)
    raise DeliveryError(f"{fmt} stays outside preset '{preset.name}' after {MAX_ATTEMPTS} attempts: "
                        f"{'; '.join(problems)}")
