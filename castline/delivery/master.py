"""Mastering: one programme gain, a true-peak limiter, re-measure; streaming in blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from castline.dsp.limiter import TruePeakLimiter
from castline.dsp.loudness import LoudnessMeter, LoudnessReading
from castline.dsp.presets import Preset
from castline.core.progress import emit

PCM24_SCALE = float(2 ** 23)
LOUDNESS_ACCURACY_LU = 0.1
"""The master pass repeats (at most ``MAX_PASSES`` times) until it lands this close to target."""
MAX_PASSES = 3


@dataclass(frozen=True)
class MasterResult:
    """The mastered file and how it got there (``chain`` is saved in the manifest)."""

    path: str
    gain_db: float
    ceiling_dbtp: float
    reading: LoudnessReading
    passes: int
    limited_samples: int
    max_gain_reduction_db: float
    chain: tuple[dict[str, object], ...]
    noise_floor_dbfs: float = float("nan")


def programme_gain_db(reading: LoudnessReading, preset: Preset) -> float:
    """The gain (dB) that brings ``reading`` to the preset's loudness or RMS target."""
    if preset.target_lufs is not None:
        measured = reading.integrated_lufs
        target = preset.target_lufs
    else:
        measured = reading.rms_dbfs
        target = float(preset.target_rms_dbfs)
    if not math.isfinite(measured):
        raise ValueError("the programme is silent: nothing to master")
    return target - measured


def master(stitched_path: str | Path, stitched: LoudnessReading, preset: Preset, out_path: str | Path, *,
           ceiling_dbtp: float | None = None, gain_offset_db: float = 0.0,
           block_samples: int = 65536) -> MasterResult:
    """Write ``out_path`` (24-bit WAV) at the preset's target with peaks under ``ceiling_dbtp``.

    The limiter lowers loudness a little where it works, so the gain is corrected from the
    re-measured master and the pass repeated (the stitched file is only re-read, never held).
    """
    ceiling = preset.limiter_ceiling_dbtp if ceiling_dbtp is None else ceiling_dbtp
    gain_db = programme_gain_db(stitched, preset) + gain_offset_db
    result = None
    for attempt in range(1, MAX_PASSES + 1):
        reading, limited, reduction, floor = _master_pass(Path(stitched_path), Path(out_path), gain_db, ceiling,
                                                   block_samples)
        result = (gain_db, reading, limited, reduction, attempt, floor)
        error_db = programme_gain_db(reading, preset) + gain_offset_db
        if abs(error_db) <= LOUDNESS_ACCURACY_LU or limited == 0:
            break
        gain_db += error_db
    gain_db, reading, limited, reduction, passes, floor = result
    chain = (
        {"step": "programme_gain", "gain_db": round(gain_db, 4)},
        {"step": "true_peak_limiter", "ceiling_dbtp": ceiling, "lookahead_ms": 5.0, "release_ms": 80.0,
         "oversampling": 4},
        {"step": "quantise", "format": "WAV PCM 24-bit"},
    )
    return MasterResult(path=str(out_path), gain_db=gain_db, ceiling_dbtp=ceiling, reading=reading, passes=passes,
                        limited_samples=limited, max_gain_reduction_db=reduction, chain=chain,
                        noise_floor_dbfs=floor)


def _master_pass(source: Path, target: Path, gain_db: float, ceiling_dbtp: float,
                 block_samples: int) -> tuple[LoudnessReading, int, float, float]:
    gain = np.float32(10 ** (gain_db / 20))
    with soundfile.SoundFile(str(source)) as reader:
        sample_rate, channels, frames = reader.samplerate, reader.channels, reader.frames
        limiter = TruePeakLimiter(sample_rate, channels, ceiling_dbtp=ceiling_dbtp)
        meter = LoudnessMeter(sample_rate, channels)
        emit("master", total=max(1, math.ceil(frames / block_samples)))
        with soundfile.SoundFile(str(target), "w", samplerate=sample_rate, channels=channels, subtype="PCM_24",
                                 format="WAV") as writer:
            for block in reader.blocks(blocksize=block_samples, dtype="float32", always_2d=True):
                ready = limiter.process(_channels_first(block) * gain)
                _write_quantised(ready, writer, meter)
                emit("master", advance=1)
            _write_quantised(limiter.flush(), writer, meter)
    return (meter.result(), int(limiter.samples_limited), float(limiter.gain_reduction_max_db),
            meter.noise_floor_dbfs())


def _channels_first(block: np.ndarray) -> np.ndarray:
    return block[:, 0] if block.shape[1] == 1 else np.ascontiguousarray(block.T)


def _write_quantised(samples: np.ndarray, writer: soundfile.SoundFile, meter: LoudnessMeter) -> None:
    if samples.size == 0:
        return
    # Meter exactly what the file will hold: the 24-bit grid.
    quantised = (np.round(np.clip(samples, -1.0, 1.0 - 1 / PCM24_SCALE) * PCM24_SCALE) / PCM24_SCALE).astype(
        np.float32)
    meter.process(quantised)
    writer.write(quantised if quantised.ndim == 1 else quantised.T)
