"""Mastering: one programme gain, a true-peak limiter, re-measure; streaming in blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from castline.dsp.chain import MasterChain, ProgrammeGain, Quantise, TruePeakLimit
from castline.dsp.loudness import LoudnessMeter, LoudnessReading
from castline.dsp.presets import Preset
from castline.core.progress import emit

LIMITER_LOOKAHEAD_MS = 5.0
LIMITER_RELEASE_MS = 80.0
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
    """What ``steps`` ran, as the manifest records it (``MasterChain.to_manifest``)."""
    noise_floor_dbfs: float = float("nan")
    steps: MasterChain | None = None
    """The master chain of the last pass: the one that wrote the file."""


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

    Each pass builds the master chain (``castline.dsp.chain``: programme gain, true-peak limiter,
    24-bit quantisation) and runs it. The limiter lowers loudness a little where it works, so the
    gain is corrected from the re-measured master and the pass repeated (the stitched file is only
    re-read, never held); the chain of the last pass is the one recorded.
    """
    ceiling = preset.limiter_ceiling_dbtp if ceiling_dbtp is None else ceiling_dbtp
    with soundfile.SoundFile(str(stitched_path)) as probe:
        sample_rate = probe.samplerate
    limit = TruePeakLimit.at(sample_rate, ceiling, lookahead_ms=LIMITER_LOOKAHEAD_MS, release_ms=LIMITER_RELEASE_MS)
    gain_db = programme_gain_db(stitched, preset) + gain_offset_db
    result = None
    for attempt in range(1, MAX_PASSES + 1):
        chain = MasterChain(gain=ProgrammeGain(gain_db), limit=limit, quantise=Quantise(bits=24))
        reading, limited, reduction, floor = _master_pass(Path(stitched_path), Path(out_path), chain, block_samples)
        result = (chain, reading, limited, reduction, attempt, floor)
        error_db = programme_gain_db(reading, preset) + gain_offset_db
        if abs(error_db) <= LOUDNESS_ACCURACY_LU or limited == 0:
            break
        gain_db += error_db
    chain, reading, limited, reduction, passes, floor = result
    return MasterResult(path=str(out_path), gain_db=chain.gain.gain_db, ceiling_dbtp=chain.limit.ceiling_dbtp,
                        reading=reading, passes=passes, limited_samples=limited, max_gain_reduction_db=reduction,
                        chain=chain.to_manifest(), noise_floor_dbfs=floor, steps=chain)


def _master_pass(source: Path, target: Path, chain: MasterChain,
                 block_samples: int) -> tuple[LoudnessReading, int, float, float]:
    gain = chain.gain.factor
    with soundfile.SoundFile(str(source)) as reader:
        sample_rate, channels, frames = reader.samplerate, reader.channels, reader.frames
        limiter = chain.limit.limiter(sample_rate, channels)
        meter = LoudnessMeter(sample_rate, channels)
        emit("master", total=max(1, math.ceil(frames / block_samples)))
        with soundfile.SoundFile(str(target), "w", samplerate=sample_rate, channels=channels,
                                 subtype=chain.quantise.subtype, format="WAV") as writer:
            for block in reader.blocks(blocksize=block_samples, dtype="float32", always_2d=True):
                ready = limiter.process(_channels_first(block) * gain)
                _write_quantised(ready, writer, meter, chain.quantise)
                emit("master", advance=1)
            _write_quantised(limiter.flush(), writer, meter, chain.quantise)
    return (meter.result(), int(limiter.samples_limited), float(limiter.gain_reduction_max_db),
            meter.noise_floor_dbfs())


def _channels_first(block: np.ndarray) -> np.ndarray:
    return block[:, 0] if block.shape[1] == 1 else np.ascontiguousarray(block.T)


def _write_quantised(samples: np.ndarray, writer: soundfile.SoundFile, meter: LoudnessMeter,
                     quantise: Quantise) -> None:
    if samples.size == 0:
        return
    # Meter exactly what the file will hold: the quantiser's grid.
    quantised, codes = quantise.quantised(samples)
    meter.process(quantised)
    writer.write(codes if codes.ndim == 1 else codes.T)
