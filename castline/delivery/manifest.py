"""The episode manifest (schema ``castline.episode/1``): references, hashes and times, never audio.

``EpisodeManifest`` is a frozen record built once, by ``build_manifest`` after every object of the
release is stored (so the release id, upload counts and QA summary are known), and never edited.
Readers (up-to-date check, ``castline qa``, the command line's summary) parse the published JSON
back with ``EpisodeManifest.from_json`` and read fields, not keys.

To add a field: declare it on the record it belongs to (one line), give it a value in
``build_manifest`` and, if older manifests lack it, make it ``T | None = field(default=None,
metadata=OMIT_NONE)`` so manifests written before it still read and round-trip unchanged.
Serialisation is driven by the fields (``castline.delivery.json_record``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from castline import __version__
from castline.audio.encode import CODECS, EncodedFile
from castline.core.timebase import samples_to_seconds
from castline.delivery.json_record import OMIT_NONE, JsonObject, record_from_json, record_to_json
from castline.delivery.master import MasterResult
from castline.dsp.loudness import LoudnessReading
from castline.qa.records import EpisodeQA
from castline.render.plan import RenderPlan
from castline.render.stitch import StitchResult
from castline.render.synthesis import ChunkRecord
from castline.storage import ObjectInfo

SCHEMA = "castline.episode/1"


class JsonRecord:
    """``to_json`` / ``from_json`` for a frozen dataclass, from its fields (see ``json_record``)."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data (dicts, lists, numbers, strings)."""
        return record_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes):
        """The record from JSON data or text; ``KeyError``/``TypeError``/``ValueError`` when it is not one."""
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        return record_from_json(cls, data)

    def to_bytes(self) -> bytes:
        """The JSON file body (indented, UTF-8, trailing newline)."""
        return manifest_json(self)


# --- parts shared with the dub manifest -------------------------------------------------------------

@dataclass(frozen=True)
class SourceEntry(JsonRecord):
    """The input the output was made from: path as given, parser format, SHA-256 of its bytes."""

    path: str
    format: str
    sha256: str


@dataclass(frozen=True)
class FileEntry(JsonRecord):
    """A delivered audio file in the store, with the measurements of its decoded audio."""

    format: str
    key: str
    uri: str
    sha256: str
    bytes: int
    integrated_lufs: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    rms_dbfs: float | None
    loudness_range_lu: float | None
    measured_sample_rate: int
    codec: tuple[str, ...]
    attempts: int
    corrections: tuple[str, ...]

    @classmethod
    def of(cls, encoded: EncodedFile, stored: ObjectInfo) -> FileEntry:
        reading = encoded.reading
        return cls(format=encoded.format, key=stored.key, uri=stored.uri, sha256=stored.sha256, bytes=stored.bytes,
                   integrated_lufs=finite(reading.integrated_lufs), true_peak_dbtp=finite(reading.true_peak_dbtp),
                   sample_peak_dbfs=finite(reading.sample_peak_dbfs), rms_dbfs=finite(reading.rms_dbfs),
                   loudness_range_lu=finite(reading.loudness_range_lu), measured_sample_rate=reading.sample_rate,
                   codec=tuple(CODECS[encoded.format].args) or ("pcm_s24le",), attempts=encoded.attempts,
                   corrections=tuple(encoded.corrections))


@dataclass(frozen=True)
class LoudnessEntry(JsonRecord):
    """A ``LoudnessReading`` as the manifest keeps it: rounded to 0.001, ``None`` for -inf/unmeasured."""

    integrated_lufs: float | None
    loudness_range_lu: float | None
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None
    sample_peak_dbfs: float | None
    rms_dbfs: float | None
    duration_samples: int
    sample_rate: int
    channels: int
    true_peak_dbtp: float | None

    @classmethod
    def of(cls, reading: LoudnessReading) -> LoudnessEntry:
        return cls(**{spec.name: finite(getattr(reading, spec.name)) for spec in dataclasses.fields(cls)})


def finite(value: object) -> object:
    """A float rounded to 0.001, or None when not finite; anything else as it is."""
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    return value


def noise_floor(value: float) -> float | str | None:
    """JSON for a noise floor: a number, "digital-silence" for -inf, None when unmeasured."""
    if math.isinf(value) and value < 0:
        return "digital-silence"
    return finite(value)


def chain_steps(chain: Sequence[Any]) -> tuple[JsonObject, ...]:
    """A processing chain as the manifest keeps it: each step's own JSON description, frozen.

    A step is a plain mapping or a record with ``to_manifest()`` returning one."""
    return tuple(JsonObject(step.to_manifest() if hasattr(step, "to_manifest") else step) for step in chain)


# --- the episode manifest ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TranscriptEntry(JsonRecord):
    """A text file of the release (transcript): its format (the key's extension) and object."""

    format: str
    key: str
    uri: str
    sha256: str
    bytes: int

    @classmethod
    def of(cls, info: ObjectInfo) -> TranscriptEntry:
        return cls(format=info.key.rsplit(".", 1)[-1], key=info.key, uri=info.uri, sha256=info.sha256,
                   bytes=info.bytes)


@dataclass(frozen=True)
class TurnEntry(JsonRecord):
    index: int
    speaker: str
    speaker_name: str
    voice: str
    text: str
    start_sample: int
    end_sample: int
    chunks: tuple[int, ...]
    source_line: int | None


@dataclass(frozen=True)
class ChapterEntry(JsonRecord):
    title: str
    first_turn: int
    start_sample: int


@dataclass(frozen=True)
class ChunkEntry(JsonRecord):
    """One chunk: its cache key (``hash``), audio object, place in script and programme, and gain."""

    index: int
    hash: str
    uri: str
    sha256: str
    bytes: int
    turn: int
    position: int
    speaker: str
    voice: str
    engine: str
    seed: int
    text: str
    boundary: str
    duration_samples: int
    start_sample: int
    end_sample: int
    gain_db: float
    rendered: bool
    skipped: str | None = field(default=None, metadata=OMIT_NONE)
    """Why the chunk is silence instead of speech (its voice cannot speak the text); absent when spoken."""
    spoken_text: str | None = field(default=None, metadata=OMIT_NONE)
    """What the engine was sent: ``text`` after pronunciation lexicons and normalisation (``text``
    stays the written text, for subtitles and transcripts)."""
    lexicon_rules: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    """The lexicon rules that fired in this chunk (``file:line grapheme``)."""
    reference_text: str | None = field(default=None, metadata=OMIT_NONE)
    """What QA listens for when ``spoken_text`` holds phoneme markup (the rules' words instead);
    absent otherwise."""

    @property
    def heard_text(self) -> str:
        """The text a transcript of this chunk is scored against."""
        return self.reference_text or self.spoken_text or self.text


@dataclass(frozen=True)
class ConsentEntry(JsonRecord):
    """A cloned voice's consent record (``evidence``: "file" or "statement"; the proof stays with the voice)."""

    who: str
    when: str
    scope: str
    evidence: str


@dataclass(frozen=True)
class VoiceEntry(JsonRecord):
    id: str
    name: str
    language: str
    engine: str
    engine_voice: str
    profile_hash: str
    profile_version: int
    cloned: bool
    words_per_minute: tuple[float, ...] | None
    consent: ConsentEntry | None


@dataclass(frozen=True)
class EngineEntry(JsonRecord):
    name: str
    version: str


@dataclass(frozen=True)
class MasteringEntry(JsonRecord):
    """How the programme was levelled: the chains as the DSP ran them, and the readings around them."""

    stitch_chain: tuple[JsonObject, ...]
    master_chain: tuple[JsonObject, ...]
    programme_gain_db: float
    passes: int
    limited_samples: int
    max_gain_reduction_db: float
    noise_floor_dbfs: float | str | None
    stitched: LoudnessEntry
    master: LoudnessEntry


@dataclass(frozen=True)
class RenderEntry(JsonRecord):
    """What the render did: its key, chunk and object counts, start/finish times, seconds per stage."""

    castline_version: str
    render_key: str
    seed: int
    workers: int
    chunks_rendered: int
    chunks_reused: int
    started_at: str
    finished_at: str
    timings_s: JsonObject
    objects_uploaded: int
    objects_reused: int


@dataclass(frozen=True)
class QAFileEntry(JsonRecord):
    name: str
    key: str
    uri: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class QASummary(JsonRecord):
    """Episode QA in brief; the full result is ``qa.json`` among ``files``."""

    verdict: str
    policy: str
    chunks: int
    passed: int
    failed: int
    retried: int
    episode_flags: tuple[str, ...]
    files: tuple[QAFileEntry, ...]

    @classmethod
    def of(cls, qa: EpisodeQA, files: Sequence[ObjectInfo]) -> QASummary:
        return cls(verdict=qa.verdict, policy=qa.policy, chunks=len(qa.chunks), passed=qa.passed_count,
                   failed=qa.failed_count, retried=qa.retried_count, episode_flags=tuple(qa.episode_flags),
                   files=tuple(QAFileEntry(name=Path(info.key).name, key=info.key, uri=info.uri, sha256=info.sha256,
                                           bytes=info.bytes) for info in files))


@dataclass(frozen=True)
class EpisodeManifest(JsonRecord):
    """A published episode (schema ``castline.episode/1``). ``preset`` is the preset's own description
    (``Preset.to_manifest()``); ``qa`` is absent when QA was off."""

    schema: str
    episode: str
    title: str
    language: str
    source: SourceEntry
    sample_rate: int
    channels: int
    duration_samples: int
    duration_seconds: float
    preset: JsonObject
    files: tuple[FileEntry, ...]
    transcripts: tuple[TranscriptEntry, ...]
    turns: tuple[TurnEntry, ...]
    chapters: tuple[ChapterEntry, ...]
    chunks: tuple[ChunkEntry, ...]
    voices: tuple[VoiceEntry, ...]
    engines: tuple[EngineEntry, ...]
    mastering: MasteringEntry
    render: RenderEntry
    warnings: tuple[str, ...]
    release: str
    qa: QASummary | None = field(default=None, metadata=OMIT_NONE)
    metadata: JsonObject | None = field(default=None, metadata=OMIT_NONE)
    """Episode metadata as tagged into the files (``castline.delivery.metadata``); absent without any."""
    show: str | None = field(default=None, metadata=OMIT_NONE)
    """Id of the show whose feed lists this episode."""
    chapters_file: TranscriptEntry | None = field(default=None, metadata=OMIT_NONE)
    """``chapters.json`` (Podcasting 2.0 JSON chapters 1.2.0), when the script has chapters."""
    cover: TranscriptEntry | None = field(default=None, metadata=OMIT_NONE)
    """The episode's cover image, published beside the files (``itunes:image`` in the feed)."""
    audiobook: JsonObject | None = field(default=None, metadata=OMIT_NONE)
    """``--package audiobook``: ``passed`` and ``files`` (the M4B, and each ACX chapter MP3 with its readings)."""

    @property
    def preset_name(self) -> str:
        return self.preset["name"]

    def file(self, fmt: str) -> FileEntry | None:
        return next((item for item in self.files if item.format == fmt), None)


# --- what housekeeping reads of any published manifest ---------------------------------------------

@dataclass(frozen=True)
class ListedObject(JsonRecord):
    """An object a manifest lists, as far as checking it is stored intact goes."""

    json_ignore_unknown: ClassVar[bool] = True
    key: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class _RenderKey(JsonRecord):
    json_ignore_unknown: ClassVar[bool] = True
    render_key: str


@dataclass(frozen=True)
class _QAFiles(JsonRecord):
    json_ignore_unknown: ClassVar[bool] = True
    files: tuple[ListedObject, ...] = ()


@dataclass(frozen=True)
class ManifestIndex(JsonRecord):
    """The release a live manifest points at, the render key that made it and the objects it lists.

    A projection of ``EpisodeManifest`` that ignores every other key, on purpose: pruning old
    releases and the up-to-date check must keep working on a manifest written by another castline
    version (a newer one with more fields must not make the live release look absent and get pruned)."""

    json_ignore_unknown: ClassVar[bool] = True
    files: tuple[ListedObject, ...]
    transcripts: tuple[ListedObject, ...]
    render: _RenderKey | None = None
    release: str | None = None
    qa: _QAFiles | None = None
    chapters_file: ListedObject | None = None
    cover: ListedObject | None = None
    audiobook: _QAFiles | None = None

    @property
    def render_key(self) -> str | None:
        return self.render.render_key if self.render else None

    def objects(self) -> tuple[ListedObject, ...]:
        extras = tuple(item for item in (self.chapters_file, self.cover) if item is not None)
        extras += self.audiobook.files if self.audiobook else ()
        return self.files + self.transcripts + (self.qa.files if self.qa else ()) + extras


@dataclass(frozen=True)
class ReleasePointer(JsonRecord):
    """Only the release a live manifest points at (``None`` when it names none)."""

    json_ignore_unknown: ClassVar[bool] = True
    release: str | None = None


@dataclass(frozen=True)
class RenderStats:
    """What the flow measured about a render (input to the manifest's ``render`` part)."""

    chunks_rendered: int
    chunks_reused: int
    started_at: str
    finished_at: str
    workers: int
    timings_s: tuple[tuple[str, float], ...] = ()
    render_key: str = ""


@dataclass(frozen=True)
class PublishedFile:
    """An encoded episode file in the store, with its decoded measurements."""

    encoded: EncodedFile
    stored: ObjectInfo


@dataclass(frozen=True)
class StoredRelease:
    """What publishing stored before the manifest: the release's objects and how many were uploaded
    (the rest were already there intact)."""

    release: str
    files: tuple[PublishedFile, ...]
    transcripts: tuple[ObjectInfo, ...]
    qa_files: tuple[ObjectInfo, ...]
    uploaded: int
    reused: int
    chapters_file: ObjectInfo | None = None
    cover: ObjectInfo | None = None
    metadata: Mapping[str, Any] | None = None
    show: str | None = None
    audiobook: Mapping[str, Any] | None = None


def build_manifest(plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult,
                   mastered: MasterResult, stats: RenderStats, script_sha256: str, stored: StoredRelease,
                   qa: EpisodeQA | None = None) -> EpisodeManifest:
    """The manifest of a release whose objects are all stored (``stored``)."""
    episode = plan.episode
    placements = {placement.index: placement for placement in stitched.placements}
    turns = []
    for turn in episode.turns:
        chunk_indexes = tuple(job.index for job in plan.jobs if job.turn == turn.index)
        turns.append(TurnEntry(
            index=turn.index, speaker=turn.speaker, speaker_name=episode.display_name(turn.speaker),
            voice=episode.voice_for(turn.speaker), text=turn.text,
            start_sample=placements[chunk_indexes[0]].start_sample,
            end_sample=placements[chunk_indexes[-1]].end_sample, chunks=chunk_indexes, source_line=turn.source.line))
    chunks = []
    for job, record in zip(plan.jobs, records, strict=True):
        placement = placements[job.index]
        chunks.append(ChunkEntry(
            index=job.index, hash=job.key, uri=record.uri, sha256=record.sha256, bytes=record.bytes, turn=job.turn,
            position=job.position, speaker=job.speaker, voice=job.voice_id, engine=job.engine, seed=job.seed,
            text=job.text, boundary=job.boundary.value, duration_samples=record.duration_samples,
            start_sample=placement.start_sample, end_sample=placement.end_sample, gain_db=placement.gain_db,
            rendered=record.rendered, skipped=job.skipped, spoken_text=job.spoken_text,
            lexicon_rules=job.lexicon_rules,
            reference_text=job.reference_text if job.reference_text != job.spoken_text else None))
    chapters = tuple(ChapterEntry(title=chapter.title, first_turn=chapter.first_turn,
                                  start_sample=turns[chapter.first_turn].start_sample) for chapter in episode.chapters)
    voices = tuple(VoiceEntry(
        id=voice.voice_id, name=voice.display_name, language=voice.language, engine=voice.engine,
        engine_voice=voice.engine_voice, profile_hash=voice.profile_hash, profile_version=voice.version,
        cloned=voice.is_clone, words_per_minute=tuple(voice.words_per_minute) if voice.words_per_minute else None,
        consent=(ConsentEntry(who=voice.consent.who, when=voice.consent.when, scope=voice.consent.scope,
                              evidence="file" if voice.consent.evidence else "statement")
                 if voice.consent else None)) for voice in plan.voices)
    reading = mastered.reading
    return EpisodeManifest(
        schema=SCHEMA,
        episode=episode.meta.episode_id,
        title=episode.meta.title,
        language=episode.meta.language,
        source=SourceEntry(path=episode.source_path, format=episode.source_format, sha256=script_sha256),
        sample_rate=stitched.sample_rate,
        channels=reading.channels,
        duration_samples=reading.duration_samples,
        duration_seconds=round(samples_to_seconds(reading.duration_samples, stitched.sample_rate), 3),
        preset=JsonObject(plan.preset.to_manifest()),
        files=tuple(FileEntry.of(item.encoded, item.stored) for item in stored.files),
        transcripts=tuple(TranscriptEntry.of(info) for info in stored.transcripts),
        turns=tuple(turns),
        chapters=chapters,
        chunks=tuple(chunks),
        voices=voices,
        engines=tuple(EngineEntry(name=name, version=identity) for name, identity in plan.engines),
        mastering=MasteringEntry(
            stitch_chain=chain_steps(stitched.chain),
            master_chain=chain_steps(mastered.chain),
            programme_gain_db=round(mastered.gain_db, 4),
            passes=mastered.passes,
            limited_samples=mastered.limited_samples,
            max_gain_reduction_db=round(mastered.max_gain_reduction_db, 3),
            noise_floor_dbfs=noise_floor(mastered.noise_floor_dbfs),
            stitched=LoudnessEntry.of(stitched.reading),
            master=LoudnessEntry.of(reading)),
        render=RenderEntry(
            castline_version=__version__, render_key=stats.render_key, seed=plan.options.seed, workers=stats.workers,
            chunks_rendered=stats.chunks_rendered, chunks_reused=stats.chunks_reused, started_at=stats.started_at,
            finished_at=stats.finished_at,
            timings_s=JsonObject({stage: round(seconds, 3) for stage, seconds in stats.timings_s}),
            objects_uploaded=stored.uploaded, objects_reused=stored.reused),
        warnings=tuple(episode.warnings),
        release=stored.release,
        qa=None if qa is None else QASummary.of(qa, stored.qa_files),
        metadata=None if stored.metadata is None else JsonObject(dict(stored.metadata)),
        show=stored.show,
        chapters_file=None if stored.chapters_file is None else TranscriptEntry.of(stored.chapters_file),
        cover=None if stored.cover is None else TranscriptEntry.of(stored.cover),
        audiobook=None if stored.audiobook is None else JsonObject(dict(stored.audiobook)),
    )


def manifest_json(manifest: JsonRecord | Mapping[str, Any]) -> bytes:
    """A manifest's file body: indented JSON, UTF-8, trailing newline."""
    data = manifest.to_json() if isinstance(manifest, JsonRecord) else manifest
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
