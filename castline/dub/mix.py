"""Mix a language's placed speech over the ducked background, streaming in blocks; master it;
write the dialogue stem at the mix's gain.

Memory is bounded by the block size and the segments touching one block: the background is read
block by block (a 30-minute 48 kHz stereo stem is never loaded), speech segments are memory-mapped.
The mix has exactly the background's duration (without a background: to the last speech plus
``NO_BACKGROUND_TAIL_MS``). Speech is mono and goes to every channel of the mix at the same gain.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from castline.dsp.loudness import LoudnessMeter, LoudnessReading
from castline.dub.duck import DuckEnvelope
from castline.dub.plan import NO_BACKGROUND_TAIL_MS, LanguagePlan
from castline.dub.voicing import VoicedLanguage, VoicedUnit
from castline.audio.encode import EncodedFile, deliver
from castline.delivery.master import MasterResult, master
from castline.dsp.presets import PRESETS
from castline.core.progress import emit
from castline.core.timebase import ms_to_samples

BLOCK_SAMPLES = 65_536
MAX_SPEAKER_GAIN_DB = 20.0


@dataclass(frozen=True)
class MixResult:
    """The mastered mix and the dialogue stem (files in the work folder), and how they were made.

    ``gain_db`` per speaker brings each voice to ``dialogue_target_lufs`` before mastering; the
    master's programme gain then applies to speech and background alike (and to the stem).
    """

    mix_path: str
    dialogue_path: str
    premix_path: str
    premix_reading: LoudnessReading
    mastered: MasterResult
    dialogue_reading: LoudnessReading
    sample_rate: int
    channels: int
    duration_samples: int
    speaker_gains_db: tuple[tuple[str, float], ...]
    dialogue_target_lufs: float
    source_dialogue_lufs: float | None
    chain: tuple[dict[str, object], ...]
    seconds: float = 0.0


def measure_file_loudness(path: str | Path, block_samples: int = BLOCK_SAMPLES) -> LoudnessReading:
    """Integrated loudness etc. of an audio file, read in blocks."""
    with soundfile.SoundFile(str(path)) as reader:
        meter = LoudnessMeter(reader.samplerate, reader.channels, true_peak=False)
        for block in reader.blocks(blocksize=block_samples, dtype="float32", always_2d=True):
            meter.process(block[:, 0] if block.shape[1] == 1 else block.T)
    return meter.result()


def speaker_gains(voiced: Sequence[VoicedUnit], target_lufs: float) -> dict[str, float]:
    """One gain per speaker (dB) bringing each speaker's speech to ``target_lufs`` (energy-weighted
    over its cues, like the render's speaker levelling: keeps each voice's own dynamics)."""
    energy: dict[str, float] = {}
    duration: dict[str, float] = {}
    for item in voiced:
        if item.integrated_lufs is None:
            continue
        length = item.speech_end_sample - item.speech_start_sample
        energy[item.unit.speaker] = energy.get(item.unit.speaker, 0.0) + length * 10 ** (item.integrated_lufs / 10)
        duration[item.unit.speaker] = duration.get(item.unit.speaker, 0.0) + length
    gains = {}
    for item in voiced:
        speaker = item.unit.speaker
        if speaker in energy:
            level = 10 * math.log10(energy[speaker] / duration[speaker])
            gains[speaker] = round(max(-MAX_SPEAKER_GAIN_DB, min(MAX_SPEAKER_GAIN_DB, target_lufs - level)), 3)
        else:
            gains.setdefault(speaker, 0.0)
    return gains


def programme_samples(plan: LanguagePlan, voiced: Sequence[VoicedUnit]) -> int:
    """The mix's length: the picture's (every track lasts the video), else the background's,
    else up to the last speech plus ``NO_BACKGROUND_TAIL_MS``."""
    if plan.programme_samples is not None:
        return plan.programme_samples
    last = max(max(item.speech_end_sample, item.unit.slot_end_sample) for item in voiced)
    return last + ms_to_samples(NO_BACKGROUND_TAIL_MS, plan.sample_rate)


def mix_language(plan: LanguagePlan, voiced: VoicedLanguage, work_dir: str | Path,
                 block_samples: int = BLOCK_SAMPLES) -> MixResult:
    """Premix (float WAV) → master (``mix.wav``, 24-bit) → dialogue stem (``dialogue.wav``, float,
    at the master's programme gain)."""
    started = time.perf_counter()
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    options = plan.options
    rate, channels = plan.sample_rate, plan.channels
    duration = programme_samples(plan, voiced.units)
    source_lufs = (measure_file_loudness(options.match_dialogue).integrated_lufs
                   if options.match_dialogue else None)
    target = source_lufs if source_lufs is not None and math.isfinite(source_lufs) else options.dialogue_lufs
    gains = speaker_gains(voiced.units, target)
    segments = sorted(((item.speech_start_sample, item.speech_end_sample, item.segment_path,
                        np.float32(10 ** (gains[item.unit.speaker] / 20))) for item in voiced.units),
                      key=lambda segment: segment[0])
    envelope = DuckEnvelope.of([(start, end) for start, end, _, _ in segments], rate, options.duck)
    premix_path = folder / f"premix-{plan.language}.wav"
    dialogue_pre_path = folder / f"dialogue-pre-{plan.language}.wav"
    stage = f"dub-mix:{plan.language}"
    emit(stage, total=max(1, math.ceil(duration / block_samples)) * 2)
    premix_meter = LoudnessMeter(rate, channels, true_peak=False)
    bed_path = bed_file(plan, folder)
    reader = soundfile.SoundFile(bed_path) if bed_path else None
    try:
        with soundfile.SoundFile(str(premix_path), "w", samplerate=rate, channels=channels, subtype="FLOAT",
                                 format="WAV") as premix, \
                soundfile.SoundFile(str(dialogue_pre_path), "w", samplerate=rate, channels=1, subtype="FLOAT",
                                    format="WAV") as dialogue_file:
            next_segment, active = 0, []
            for block_start in range(0, duration, block_samples):
                count = min(block_samples, duration - block_start)
                block_end = block_start + count
                while next_segment < len(segments) and segments[next_segment][0] < block_end:
                    active.append(segments[next_segment])
                    next_segment += 1
                active = [segment for segment in active if segment[1] > block_start]
                speech = _placed(active, block_start, count)
                background = _background_block(reader, count, channels)
                mixed = background * envelope.gains(block_start, count) + speech
                premix.write(mixed.T)
                dialogue_file.write(speech)
                premix_meter.process(mixed if channels > 1 else mixed[0])
                emit(stage, advance=1)
    finally:
        if reader is not None:
            reader.close()
    premix_reading = premix_meter.result()
    preset = PRESETS[options.preset]
    mix_path = folder / f"master-{plan.language}.wav"
    mastered = master(premix_path, premix_reading, preset, mix_path, block_samples=block_samples)
    dialogue_path = folder / f"dialogue-{plan.language}.wav"
    dialogue_reading = _apply_gain(dialogue_pre_path, dialogue_path, mastered.gain_db, block_samples, stage)
    bed = plan.background
    chain = (
        {"step": "bed", "kind": bed.kind if bed else "none",
         "description": bed.description if bed else "no bed: dialogue only",
         "sample_rate": rate, "resampled": "speech up to the bed's rate; the bed never"},
        {"step": "place", "onset": "sample-exact at the slot start", "onset_threshold_dbfs": -45.0,
         "tail_keep_ms": 40.0, "fade_out_ms": 10.0},
        {"step": "speaker_gain", "target_lufs": round(target, 3),
         "matched_to_source_dialogue": source_lufs is not None, "gains_db": dict(sorted(gains.items()))},
        {"step": "duck", "depth_db": options.duck.depth_db, "attack_ms": options.duck.attack_ms,
         "hold_ms": options.duck.hold_ms, "release_ms": options.duck.release_ms,
         "shape": "raised-cosine in dB, leading the speech onset"},
        {"step": "sum", "speech_to": "every channel", "channels": channels, "sample_rate": rate,
         "normalised": False},
    )
    return MixResult(mix_path=str(mix_path), dialogue_path=str(dialogue_path), premix_path=str(premix_path),
                     premix_reading=premix_reading, mastered=mastered, dialogue_reading=dialogue_reading,
                     sample_rate=rate, channels=channels, duration_samples=duration,
                     speaker_gains_db=tuple(sorted(gains.items())), dialogue_target_lufs=target,
                     source_dialogue_lufs=source_lufs, chain=chain + tuple(mastered.chain),
                     seconds=time.perf_counter() - started)


def bed_file(plan: LanguagePlan, folder: Path) -> str | None:
    """The bed as a file libsndfile reads: the stem itself, or the programme video's audio
    demuxed by ffmpeg at the plan's rate and cut to the picture's duration."""
    bed = plan.background
    if bed is None:
        return None
    if bed.kind != "programme-audio":
        return bed.path
    from castline.dub.video import demux_audio

    path = folder / f"bed-{plan.language}.wav"
    demux_audio(bed.path, path, duration_samples=bed.duration_samples, sample_rate=plan.sample_rate)
    return str(path)


def _placed(active: list[tuple[int, int, str, np.float32]], block_start: int, count: int) -> np.ndarray:
    speech = np.zeros(count, np.float32)
    for start, end, path, gain in active:
        segment = np.load(path, mmap_mode="r")
        first = max(block_start, start)
        last = min(block_start + count, end)
        if last > first:
            speech[first - block_start:last - block_start] += segment[first - start:last - start] * gain
    return speech


def _background_block(reader: soundfile.SoundFile | None, count: int, channels: int) -> np.ndarray:
    block = np.zeros((channels, count), np.float32)
    if reader is not None:
        data = reader.read(count, dtype="float32", always_2d=True)
        block[:, :data.shape[0]] = data.T
    return block


def _apply_gain(source: Path, target: Path, gain_db: float, block_samples: int, stage: str) -> LoudnessReading:
    gain = np.float32(10 ** (gain_db / 20))
    with soundfile.SoundFile(str(source)) as reader, \
            soundfile.SoundFile(str(target), "w", samplerate=reader.samplerate, channels=1, subtype="FLOAT",
                                format="WAV") as writer:
        meter = LoudnessMeter(reader.samplerate, 1, true_peak=False)
        for block in reader.blocks(blocksize=block_samples, dtype="float32"):
            scaled = block * gain
            writer.write(scaled)
            meter.process(scaled)
            emit(stage, advance=1)
    return meter.result()


def deliver_format(plan: LanguagePlan, mixed: MixResult, fmt: str, work_dir: str | Path) -> EncodedFile:
    """Encode the mix in ``fmt`` and verify it against the preset (re-mastering if a codec pushes
    it out, like the render's delivery)."""
    folder = Path(work_dir)
    preset = PRESETS[plan.options.preset]

    def remaster(gain_offset_db: float, ceiling_dbtp: float) -> Path:
        path = folder / f"mix-{plan.language}-for-{fmt}.wav"
        master(mixed.premix_path, mixed.premix_reading, preset, path, ceiling_dbtp=ceiling_dbtp,
               gain_offset_db=gain_offset_db)
        return path

    return deliver(mixed.mix_path, mixed.mastered.reading, fmt, folder / f"mix-{plan.language}.{fmt}", preset,
                   mixed.mastered.ceiling_dbtp, remaster)
