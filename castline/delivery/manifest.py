"""The episode manifest: references, hashes and times, never audio. Written last, as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Sequence

from castline import __version__
from castline.dsp.loudness import LoudnessReading
from castline.audio.encode import CODECS, EncodedFile
from castline.delivery.master import MasterResult
from castline.render.plan import RenderPlan
from castline.render.stitch import StitchResult
from castline.storage import ObjectInfo
from castline.render.synthesis import ChunkRecord
from castline.core.timebase import samples_to_seconds

SCHEMA = "castline.episode/1"


@dataclass(frozen=True)
class PublishedFile:
    """An encoded episode file in the store, with its decoded measurements."""

    encoded: EncodedFile
    stored: ObjectInfo


@dataclass(frozen=True)
class RenderStats:
    chunks_rendered: int
    chunks_reused: int
    started_at: str
    finished_at: str
    workers: int
    timings_s: tuple[tuple[str, float], ...] = ()
    render_key: str = ""


def reading_dict(reading: LoudnessReading) -> dict[str, object]:
    data = dataclasses.asdict(reading)
    return {key: _finite(value) for key, value in data.items()}


def _floor(value: float) -> object:
    """JSON for a noise floor: a number, "digital-silence" for -inf, None when unmeasured."""
    if math.isinf(value) and value < 0:
        return "digital-silence"
    return _finite(value)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    return value


def build_manifest(plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult,
                   mastered: MasterResult, files: Sequence[PublishedFile], transcripts: Sequence[ObjectInfo],
                   stats: RenderStats, script_sha256: str) -> dict[str, object]:
    """The manifest as a JSON-ready dict (schema ``castline.episode/1``)."""
    episode = plan.episode
    placements = {placement.index: placement for placement in stitched.placements}
    turns = []
    for turn in episode.turns:
        chunk_indexes = [job.index for job in plan.jobs if job.turn == turn.index]
        turns.append({
            "index": turn.index, "speaker": turn.speaker, "speaker_name": episode.display_name(turn.speaker),
            "voice": episode.voice_for(turn.speaker), "text": turn.text,
            "start_sample": placements[chunk_indexes[0]].start_sample,
            "end_sample": placements[chunk_indexes[-1]].end_sample,
            "chunks": chunk_indexes, "source_line": turn.source.line,
        })
    chunks = []
    for job, record in zip(plan.jobs, records, strict=True):
        placement = placements[job.index]
        chunks.append({
            "index": job.index, "hash": job.key, "uri": record.uri, "sha256": record.sha256, "bytes": record.bytes,
            "turn": job.turn, "position": job.position, "speaker": job.speaker, "voice": job.voice_id,
            "engine": job.engine, "seed": job.seed, "text": job.text, "boundary": job.boundary.value,
            "duration_samples": record.duration_samples, "start_sample": placement.start_sample,
            "end_sample": placement.end_sample, "gain_db": placement.gain_db, "rendered": record.rendered,
        })
    chapters = [{"title": chapter.title, "first_turn": chapter.first_turn,
                 "start_sample": turns[chapter.first_turn]["start_sample"]} for chapter in episode.chapters]
    return {
        "schema": SCHEMA,
        "episode": episode.meta.episode_id,
        "title": episode.meta.title,
        "language": episode.meta.language,
        "source": {"path": episode.source_path, "format": episode.source_format, "sha256": script_sha256},
        "sample_rate": stitched.sample_rate,
        "channels": mastered.reading.channels,
        "duration_samples": mastered.reading.duration_samples,
        "duration_seconds": round(samples_to_seconds(mastered.reading.duration_samples, stitched.sample_rate), 3),
        "preset": plan.preset.to_manifest(),
        "files": [_file_entry(published) for published in files],
        "transcripts": [{"format": info.key.rsplit(".", 1)[-1], "key": info.key, "uri": info.uri, "sha256": info.sha256,
                         "bytes": info.bytes} for info in transcripts],
        "turns": turns,
        "chapters": chapters,
        "chunks": chunks,
        "voices": [{"id": voice.voice_id, "name": voice.display_name, "language": voice.language,
                    "engine": voice.engine, "engine_voice": voice.engine_voice, "profile_hash": voice.profile_hash,
                    "profile_version": voice.version, "cloned": voice.is_clone,
                    "words_per_minute": list(voice.words_per_minute) if voice.words_per_minute else None,
                    "consent": ({"who": voice.consent.who, "when": voice.consent.when, "scope": voice.consent.scope,
                                 "evidence": "file" if voice.consent.evidence else "statement"}
                                if voice.consent else None)} for voice in plan.voices],
        "engines": [{"name": name, "version": identity} for name, identity in plan.engines],
        "mastering": {
            "stitch_chain": list(stitched.chain),
            "master_chain": list(mastered.chain),
            "programme_gain_db": round(mastered.gain_db, 4),
            "passes": mastered.passes,
            "limited_samples": mastered.limited_samples,
            "max_gain_reduction_db": round(mastered.max_gain_reduction_db, 3),
            "noise_floor_dbfs": _floor(mastered.noise_floor_dbfs),
            "stitched": reading_dict(stitched.reading),
            "master": reading_dict(mastered.reading),
        },
        "render": {"castline_version": __version__, "render_key": stats.render_key, "seed": plan.options.seed,
                   "workers": stats.workers,
                   "chunks_rendered": stats.chunks_rendered, "chunks_reused": stats.chunks_reused,
                   "started_at": stats.started_at, "finished_at": stats.finished_at,
                   "timings_s": {stage: round(seconds, 3) for stage, seconds in stats.timings_s}},
        "warnings": list(episode.warnings),
    }


def _file_entry(published: PublishedFile) -> dict[str, object]:
    reading = published.encoded.reading
    codec = CODECS[published.encoded.format]
    return {
        "format": published.encoded.format, "key": published.stored.key, "uri": published.stored.uri, "sha256": published.stored.sha256,
        "bytes": published.stored.bytes, "integrated_lufs": _finite(reading.integrated_lufs),
        "true_peak_dbtp": _finite(reading.true_peak_dbtp), "sample_peak_dbfs": _finite(reading.sample_peak_dbfs),
        "rms_dbfs": _finite(reading.rms_dbfs), "loudness_range_lu": _finite(reading.loudness_range_lu),
        "measured_sample_rate": reading.sample_rate, "codec": list(codec.args) or ["pcm_s24le"],
        "attempts": published.encoded.attempts, "corrections": list(published.encoded.corrections),
    }


def manifest_json(manifest: dict[str, object]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
