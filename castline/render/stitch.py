"""Join chunk audio into one programme file, streaming: memory is bounded by the longest chunk."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from castline.audio.chunkfile import read_chunk
from castline.dsp.chain import DcHighpass, Fades, Join, SpeakerGain, StitchChain, TrimSilence
from castline.dsp.edges import equal_power_crossfade
from castline.dsp.loudness import LoudnessMeter, LoudnessReading
from castline.render.chunking import Boundary
from castline.core.progress import emit
from castline.render.plan import ChunkJob
from castline.storage import Store
from castline.render.synthesis import ChunkRecord, audio_key
from castline.core.timebase import ms_to_samples


@dataclass(frozen=True)
class StitchSettings:
    """How chunks are conditioned and joined (all durations in ms, levels in dB)."""

    highpass_hz: float = 40.0
    trim_threshold_dbfs: float = -45.0
    trim_keep_ms: float = 40.0
    fade_ms: float = 5.0
    crossfade_ms: float = 10.0
    lead_in_ms: int = 300
    tail_ms: int = 700
    sentence_pause_ms: int = 250
    same_speaker_turn_pause_ms: int = 400
    speaker_change_pause_ms: int = 550
    scene_pause_ms: int = 1400
    level_speakers: bool = True
    max_speaker_gain_db: float = 12.0
    block_samples: int = 65536

    @classmethod
    def with_pauses(cls, pauses_ms: tuple[tuple[str, int], ...]) -> "StitchSettings":
        """Defaults with named pauses overridden (names as in ``castline.render.options.PAUSE_NAMES``)."""
        from dataclasses import replace

        return replace(cls(), **{PAUSE_FIELDS[name]: value for name, value in pauses_ms})

    def pause_ms(self, job: ChunkJob, previous: ChunkJob | None) -> int:
        """The silence before ``job`` (0 for a split utterance, which is crossfaded instead)."""
        return pause_before_ms(self.join_step(), job, previous)

    def chain(self, gains_db: dict[str, float]) -> StitchChain:
        """The stitch chain these settings and the speakers' ``gains_db`` run (``castline.dsp.chain``)."""
        return StitchChain(highpass=DcHighpass(cutoff_hz=self.highpass_hz),
                           trim=TrimSilence(threshold_dbfs=self.trim_threshold_dbfs, keep_ms=self.trim_keep_ms),
                           fades=Fades(fade_ms=self.fade_ms), speaker_gain=SpeakerGain(tuple(sorted(gains_db.items()))),
                           join=self.join_step())

    def join_step(self) -> Join:
        return Join(crossfade_ms=self.crossfade_ms,
                    pauses_ms=tuple((name, getattr(self, field)) for name, field in PAUSE_FIELDS.items()))


def pause_before_ms(join: Join, job: ChunkJob, previous: ChunkJob | None) -> int:
    """The silence (ms) ``join`` puts before ``job`` (0 for a split utterance, which is crossfaded instead)."""
    if job.pause_before_ms is not None:
        return job.pause_before_ms
    if previous is None or job.boundary == Boundary.START:
        return join.pause_ms("lead_in")
    if job.boundary == Boundary.SPLIT:
        return 0
    if job.boundary == Boundary.SENTENCE:
        return join.pause_ms("sentence")
    if job.boundary == Boundary.SCENE:
        return join.pause_ms("scene")
    if job.speaker == previous.speaker:
        return join.pause_ms("same_speaker_turn")
    return join.pause_ms("speaker_change")


PAUSE_FIELDS = {"lead_in": "lead_in_ms", "tail": "tail_ms", "sentence": "sentence_pause_ms",
                "same_speaker_turn": "same_speaker_turn_pause_ms", "speaker_change": "speaker_change_pause_ms",
                "scene": "scene_pause_ms"}
"""``--pause NAME=MS`` names → ``StitchSettings`` fields."""


@dataclass(frozen=True)
class Placement:
    """Where a chunk landed in the programme: ``[start_sample, end_sample)`` and its gain."""

    index: int
    start_sample: int
    end_sample: int
    gain_db: float


@dataclass(frozen=True)
class StitchResult:
    path: str
    sample_rate: int
    duration_samples: int
    placements: tuple[Placement, ...]
    speaker_gains_db: tuple[tuple[str, float], ...]
    reading: LoudnessReading
    chain: tuple[dict[str, object], ...] = field(default=())
    """What ``steps`` ran, as the manifest records it (``StitchChain.to_manifest``)."""
    steps: StitchChain | None = None
    """The stitch chain that ran."""


def speaker_gains(jobs: Sequence[ChunkJob], records: Sequence[ChunkRecord],
                  settings: StitchSettings) -> dict[str, float]:
    """One gain per speaker (dB) bringing every speaker to the programme's common loudness.

    Per speaker rather than per chunk: per-chunk matching flattens the performance
    (measured: loudness range 8.95 → 1.46 LU), one gain per speaker keeps it.
    """
    energy: dict[str, float] = {}
    duration: dict[str, float] = {}
    for job, record in zip(jobs, records, strict=True):
        if record.integrated_lufs is None:
            continue
        energy[job.speaker] = energy.get(job.speaker, 0.0) + record.duration_samples * 10 ** (record.integrated_lufs / 10)
        duration[job.speaker] = duration.get(job.speaker, 0.0) + record.duration_samples
    if not settings.level_speakers or not energy:
        return {job.speaker: 0.0 for job in jobs}
    loudness = {speaker: 10 * math.log10(energy[speaker] / duration[speaker]) for speaker in energy}
    common = 10 * math.log10(sum(energy.values()) / sum(duration.values()))
    limit = settings.max_speaker_gain_db
    gains = {speaker: max(-limit, min(limit, common - level)) for speaker, level in loudness.items()}
    return {job.speaker: round(gains.get(job.speaker, 0.0), 3) for job in jobs}


class _ProgrammeWriter:
    """Appends samples to a float WAV, metering as it goes, counting the position in samples."""

    def __init__(self, path: Path, sample_rate: int, block_samples: int) -> None:
        self.file = soundfile.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="FLOAT",
                                        format="WAV")
        # No true peak here: the programme gain comes from loudness alone, and the master
        # pass measures true peak on what it writes.
        self.meter = LoudnessMeter(sample_rate, 1, true_peak=False)
        self.position = 0
        self.block_samples = block_samples

    def write(self, samples: np.ndarray) -> None:
        if samples.size:
            self.file.write(samples)
            self.meter.process(samples)
            self.position += samples.size

    def write_silence(self, count: int) -> None:
        while count > 0:
            step = min(count, self.block_samples)
            self.write(np.zeros(step, np.float32))
            count -= step

    def close(self) -> None:
        self.file.close()


def stitch(jobs: Sequence[ChunkJob], records: Sequence[ChunkRecord], store: Store, out_path: str | Path,
           settings: StitchSettings = StitchSettings(), sample_rate: int = 24_000) -> StitchResult:
    """Condition each chunk, join with boundary-dependent pauses, write ``out_path`` (float32 WAV)."""
    if len(jobs) != len(records):
        raise ValueError("jobs and records differ in length")
    gains = speaker_gains(jobs, records, settings)
    chain = settings.chain(gains)
    fade = ms_to_samples(chain.fades.fade_ms, sample_rate)
    crossfade = ms_to_samples(chain.join.crossfade_ms, sample_rate)
    writer = _ProgrammeWriter(Path(out_path), sample_rate, settings.block_samples)
    placements: list[Placement] = []
    held_tail = np.zeros(0, np.float32)
    emit("stitch", total=len(jobs))
    try:
        for position, (job, record) in enumerate(zip(jobs, records, strict=True)):
            previous = jobs[position - 1] if position else None
            following = jobs[position + 1] if position + 1 < len(jobs) else None
            joined_before = _same_window(previous, job)
            joined_after = _same_window(job, following)
            split_before = previous is not None and job.boundary == Boundary.SPLIT and not joined_before
            split_after = following is not None and following.boundary == Boundary.SPLIT and not joined_after
            audio = _conditioned(record, store, chain, job.speaker, sample_rate,
                                 fade_in=0 if split_before or joined_before else fade,
                                 fade_out=0 if split_after or joined_after else fade,
                                 trim_start=not joined_before, trim_end=not joined_after)
            if joined_before:
                # Lines of one window are one waveform: contiguous, with the model's own pause.
                writer.write(held_tail)
                start = writer.position
            elif split_before and held_tail.size:
                overlap = min(held_tail.size, audio.size)
                start = writer.position
                writer.write(held_tail[:held_tail.size - overlap])
                start = writer.position
                writer.write(equal_power_crossfade(held_tail[held_tail.size - overlap:], audio[:overlap]))
                audio = audio[overlap:]
            else:
                writer.write(held_tail)
                writer.write_silence(ms_to_samples(pause_before_ms(chain.join, job, previous), sample_rate))
                start = writer.position
            hold = min(crossfade, audio.size) if split_after else 0
            writer.write(audio[:audio.size - hold])
            held_tail = audio[audio.size - hold:].copy()
            placements.append(Placement(index=job.index, start_sample=start,
                                        end_sample=writer.position + held_tail.size,
                                        gain_db=chain.speaker_gain.gain_db(job.speaker)))
            emit("stitch", advance=1)
        writer.write(held_tail)
        writer.write_silence(ms_to_samples(chain.join.pause_ms("tail"), sample_rate))
    finally:
        writer.close()
    return StitchResult(path=str(out_path), sample_rate=sample_rate, duration_samples=writer.position,
                        placements=tuple(placements), speaker_gains_db=tuple(sorted(gains.items())),
                        reading=writer.meter.result(), chain=chain.to_manifest(), steps=chain)


def _same_window(first: ChunkJob | None, second: ChunkJob | None) -> bool:
    return (first is not None and second is not None and first.window is not None
            and first.window == second.window)


def _conditioned(record: ChunkRecord, store: Store, chain: StitchChain, speaker: str, sample_rate: int,
                 fade_in: int, fade_out: int, trim_start: bool = True, trim_end: bool = True) -> np.ndarray:
    """One chunk through the chain's per-chunk steps: high-pass, trim, fades, speaker gain."""
    with store.local_copy(audio_key(record.key)) as path:
        audio, rate = read_chunk(path)
    if rate != sample_rate:
        raise ValueError(f"chunk {record.key} is at {rate} Hz, expected {sample_rate} Hz")
    audio = chain.highpass.apply(audio, sample_rate)
    start, end = chain.trim.bounds(audio, sample_rate)
    start, end = (start if trim_start else 0), (end if trim_end else audio.size)
    audio = chain.fades.apply(audio[start:end], fade_in, fade_out)
    return chain.speaker_gain.apply(audio, speaker)
