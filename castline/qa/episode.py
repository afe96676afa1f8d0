"""Episode-level QA: every chunk's result, seams at every join, speakers, and delivered files."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from castline.dsp.compliance import compliance_problems
from castline.dsp.seams import CLICK_THRESHOLD_DB, seam_jump_db
from castline.audio.encode import EncodedFile
from castline import PROJECT_SAMPLE_RATE
from castline.core.errors import DeliveryError
from castline.qa.chunk_check import ChunkCheck
from castline.qa.records import ChunkQA, EpisodeQA, FileQA, SeamQA, SpeakerQA, verdict_for
from castline.dsp.presets import Preset
from castline.qa.settings import QASettings

SEAM_CONTEXT_SAMPLES = 1024
"""Samples read either side of a join: the seam metric looks at ±1 ms and two 18 ms windows."""
FAILING_SPEAKER_FLAGS = ("wrong-speaker",)


class QAFailed(DeliveryError):
    """Strict QA: a chunk still fails after its retries, so nothing is published."""


@dataclass(frozen=True)
class ChunkFacts:
    """What episode QA knows of one chunk: where it sits in the script and who speaks it."""

    index: int
    turn: int
    speaker: str
    voice_id: str
    engine: str
    text: str


@dataclass(frozen=True)
class EpisodeFacts:
    """What episode QA needs to know besides the audio: ids, language, preset, QA settings, chunks."""

    episode_id: str
    language: str
    preset: Preset
    settings: QASettings
    jobs: tuple[ChunkFacts, ...]


def episode_qa(facts: EpisodeFacts, checks: Sequence[ChunkCheck | None], spans: Sequence[tuple[int, int]],
               chunk_lufs: Sequence[float | None], master_path: str | Path, files: Sequence[EncodedFile], *,
               policy: str) -> EpisodeQA:
    """``checks``, ``spans`` (start, end samples in the master) and ``chunk_lufs`` are per chunk, in order."""
    plan = facts
    speaker_flags = _speaker_flags(plan.jobs, checks, spans)
    chunks = []
    for job, check, (start, end) in zip(plan.jobs, checks, spans, strict=True):
        flags = tuple(sorted(set((check.flags if check else ()) + speaker_flags.get(job.index, ()))))
        passed = (check.passed if check else True) and not any(f in FAILING_SPEAKER_FLAGS for f in flags)
        chunks.append(ChunkQA(
            index=job.index, turn=job.turn, speaker=job.speaker, voice=job.voice_id, text=job.text,
            transcript=check.transcript if check else "", wer=check.wer if check else None,
            attempts=check.attempts if check else 1, passed=passed, start_sample=start, end_sample=end,
            attempt_log=_attempts(check), flags=flags, metrics=check.metrics if check else (),
            asr_model=check.asr_model if check else None))
    seams = _seams(master_path, spans)
    speakers, speaker_episode_flags = _speakers(plan, checks, chunk_lufs)
    file_results = tuple(FileQA(item.format, item.reading.integrated_lufs, item.reading.true_peak_dbtp,
                                not compliance_problems(item.reading, plan.preset),
                                tuple(compliance_problems(item.reading, plan.preset))) for item in files)
    episode_flags = list(speaker_episode_flags)
    clicks = sum(seam.flagged for seam in seams)
    if clicks:
        episode_flags.append(f"seam-clicks:{clicks}")
    episode_flags += [f"non-compliant:{result.format}" for result in file_results if not result.compliant]
    thresholds = {f"wer_max_{engine}": plan.settings.wer_threshold_for(engine, plan.language)
                  for engine in sorted({job.engine for job in plan.jobs})}
    thresholds["seam_click_db"] = CLICK_THRESHOLD_DB
    return EpisodeQA(episode=plan.episode_id, verdict=verdict_for(chunks, episode_flags, policy=policy),
                     policy=policy, chunks=tuple(chunks), sample_rate=PROJECT_SAMPLE_RATE, episode_flags=tuple(episode_flags),
                     seams=seams, speakers=speakers, files=file_results, target_lufs=plan.preset.target_lufs,
                     tolerance_lu=plan.preset.tolerance_lu, thresholds=tuple(sorted(thresholds.items())))


def enforce(qa: EpisodeQA) -> None:
    """Under the strict policy, refuse delivery when a chunk still fails (one line: how many, which first)."""
    if qa.policy != "strict" or qa.verdict != "fail":
        return
    failed = [chunk for chunk in qa.chunks if not chunk.passed]
    first = failed[0]
    raise QAFailed(f"QA (strict): {len(failed)} of {len(qa.chunks)} chunks still fail after their retries; "
                   f"first: chunk {first.index} ({', '.join(first.flags)}; WER "
                   f"{'n/a' if first.wer is None else f'{first.wer:.2f}'}) {first.text[:60]!r} — nothing published")


def _attempts(check: ChunkCheck | None):
    from castline.qa.records import AttemptQA

    if check is None:
        return ()
    return tuple(AttemptQA(attempt, seed, wer, tuple(flags), chosen)
                 for attempt, seed, wer, flags, chosen in check.attempt_log)


def _speaker_flags(jobs: Sequence[ChunkFacts], checks: Sequence[ChunkCheck | None],
                   spans: Sequence[tuple[int, int]]) -> dict[int, tuple[str, ...]]:
    """Per chunk, speaker-check flags; the identity compared is the voice (two speakers may share one).

    ``spans`` are the chunks' (start, end) samples at ``PROJECT_SAMPLE_RATE``; a chunk shorter than
    ``MIN_OUTLIER_SPEECH_S`` is compared (it still counts as a wrong speaker) but never an outlier."""
    from castline.qa.speaker import MIN_OUTLIER_SPEECH_S, check_embeddings

    short = {job.index for job, (start, end) in zip(jobs, spans)
             if end - start < MIN_OUTLIER_SPEECH_S * PROJECT_SAMPLE_RATE}

    embedded = [(job.voice_id, np.asarray(check.embedding, np.float64), job.index)
                for job, check in zip(jobs, checks) if check is not None and check.embedding]
    if len({voice for voice, _, _ in embedded}) < 1 or not embedded:
        return {}
    findings = check_embeddings([(voice, vector) for voice, vector, _ in embedded])
    flags = {index: tuple(f for f in finding.flags
                          if f != "no-speech" and not (f == "speaker-outlier" and index in short))
             for (_, _, index), finding in zip(embedded, findings)}
    return {index: found for index, found in flags.items() if found}


def _speakers(plan: EpisodeFacts, checks: Sequence[ChunkCheck | None],
              chunk_lufs: Sequence[float | None]) -> tuple[tuple[SpeakerQA, ...], list[str]]:
    from castline.qa.speaker import drift_from_embeddings, profile_stats
    from castline.qa.signal_checks import MAX_LOUDNESS_SPREAD_LU

    by_voice: dict[str, list[float]] = defaultdict(list)
    for job, lufs in zip(plan.jobs, chunk_lufs):
        if lufs is not None and math.isfinite(lufs):
            by_voice[job.voice_id].append(lufs)
    embedded = [(job.voice_id, np.asarray(check.embedding, np.float64))
                for job, check in zip(plan.jobs, checks) if check is not None and check.embedding]
    stats = profile_stats(embedded) if embedded else {}
    drift = {report.speaker: report for report in drift_from_embeddings(embedded)} if embedded else {}
    speakers, flags = [], []
    for voice in sorted({job.voice_id for job in plan.jobs}):
        values = np.array(by_voice.get(voice, []))
        spread = float(np.percentile(values, 90) - np.percentile(values, 10)) if values.size >= 5 else (
            float(values.max() - values.min()) if values.size else 0.0)
        level = float(10 * np.log10(np.mean(10 ** (values / 10)))) if values.size else -math.inf
        report = drift.get(voice)
        speakers.append(SpeakerQA(speaker=",".join(sorted({j.speaker for j in plan.jobs if j.voice_id == voice})),
                                  voice=voice, integrated_lufs=level, spread_lu=spread,
                                  mean_similarity=stats[voice].median_similarity if voice in stats else None,
                                  drift=report.drop if report is not None and math.isfinite(report.drop) else None))
        if spread > MAX_LOUDNESS_SPREAD_LU:
            flags.append(f"loudness-spread:{voice}")
        if report is not None and report.flag:
            flags.append(f"drift:{voice}")
    return tuple(speakers), flags


def _seams(master_path: str | Path, spans: Sequence[tuple[int, int]]) -> tuple[SeamQA, ...]:
    """The seam metric at every chunk start and end, reading only a little audio around each."""
    joins = sorted({point for span in spans for point in span})
    seams = []
    with soundfile.SoundFile(str(master_path)) as audio:
        rate = audio.samplerate
        for join in joins:
            start = max(0, join - SEAM_CONTEXT_SAMPLES)
            audio.seek(start)
            excerpt = audio.read(min(audio.frames, join + SEAM_CONTEXT_SAMPLES) - start, dtype="float32",
                                 always_2d=True).mean(axis=1)
            jump = seam_jump_db(excerpt, join - start, rate)
            seams.append(SeamQA(join_sample=join, jump_db=jump, flagged=jump > CLICK_THRESHOLD_DB))
    return tuple(seams)

