"""The dub manifest (schema ``castline.dub/1``) and the per-cue timing table: references, hashes
and times, never audio.

``DubManifest`` is a frozen record built once by ``build_dub_manifest`` after the language's files
are stored, and read back with ``DubManifest.from_json``. To add a field: declare it on the record
it belongs to and give it a value in ``build_dub_manifest``; a field older manifests lack is
``T | None = field(default=None, metadata=OMIT_NONE)`` (see ``castline.delivery.manifest``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

from castline import __version__
from castline.core.timebase import samples_to_ms, samples_to_seconds
from castline.delivery.json_record import OMIT_NONE, JsonObject
from castline.delivery.manifest import (FileEntry, JsonRecord, LoudnessEntry, PublishedFile, SourceEntry,
                                        chain_steps)
from castline.delivery.subtitles import Cue as SubtitleCue
from castline.dsp.presets import PRESETS
from castline.dub.mix import MixResult
from castline.dub.plan import LanguagePlan, dub_key
from castline.dub.voicing import VoicedLanguage, VoicedUnit
from castline.storage import ObjectInfo

SCHEMA = "castline.dub/1"


@dataclass(frozen=True)
class BackgroundEntry(JsonRecord):
    path: str
    sha256: str
    sample_rate: int
    channels: int
    duration_samples: int
    kind: str | None = field(default=None, metadata=OMIT_NONE)
    """"stem" (an M&E stem) or "programme-audio" (the video's own audio: a voice-over)."""
    description: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class StemEntry(JsonRecord):
    name: str
    uri: str
    sha256: str
    bytes: int
    format: str
    gain: str
    reading: LoudnessEntry


@dataclass(frozen=True)
class SubtitleEntry(JsonRecord):
    format: str
    uri: str
    sha256: str
    bytes: int

    @classmethod
    def of(cls, info: ObjectInfo) -> SubtitleEntry:
        return cls(format=info.key.rsplit(".", 1)[-1], uri=info.uri, sha256=info.sha256, bytes=info.bytes)


@dataclass(frozen=True)
class CueEntry(JsonRecord):
    """One voiced unit: its slot and where its speech landed (samples), and what fitting it took."""

    index: int
    cue: int
    cue_id: str
    part: int
    parts: int
    speaker: str
    voice: str
    text: str
    source_line: int | None
    slot_start_sample: int
    slot_end_sample: int
    speech_start_sample: int
    speech_end_sample: int
    natural_ms: int
    rate: float
    stretch: float
    borrowed_ms: int
    overrun_ms: int
    truncated: bool
    outcome: str
    steps: tuple[str, ...]
    takes_rendered: int
    takes_reused: int
    speaker_from: str | None = field(default=None, metadata=OMIT_NONE)
    """Where the speaker came from: file, cast, alternation, distinct or default (``DubUnit``)."""
    error: str | None = field(default=None, metadata=OMIT_NONE)
    """Why the engine gave this cue no take (its slot is left to the bed); absent when it spoke."""


@dataclass(frozen=True)
class FitCounts(JsonRecord):
    """Counts and shares of cues by what it took to fit them."""

    cues: int
    fits_as_is: int
    rate: int
    stretched: int
    borrowed: int
    overrun: int
    truncated: int
    share_rate: float
    share_stretched: float
    share_borrowed: float
    share_overrun: float


@dataclass(frozen=True)
class FitEntry(JsonRecord):
    """The fit settings as run (``stretcher``: the one actually used) and the counts (``FitCounts``)."""

    max_rate: float
    max_stretch: float
    min_gap_ms: int
    max_borrow_ms: int
    policy: str
    stretcher: str
    margin: float
    cues: int
    fits_as_is: int
    rate: int
    stretched: int
    borrowed: int
    overrun: int
    truncated: int
    share_rate: float
    share_stretched: float
    share_borrowed: float
    share_overrun: float


@dataclass(frozen=True)
class DuckEntry(JsonRecord):
    depth_db: float
    attack_ms: float
    release_ms: float
    hold_ms: float


@dataclass(frozen=True)
class DialogueEntry(JsonRecord):
    target_lufs: float
    source_dialogue_lufs: float | None
    speaker_gains_db: JsonObject


@dataclass(frozen=True)
class DubVoiceEntry(JsonRecord):
    id: str
    name: str
    language: str
    engine: str
    engine_voice: str
    engine_options: JsonObject
    profile_hash: str
    cloned: bool


@dataclass(frozen=True)
class DubEngineEntry(JsonRecord):
    voice: str
    version: str


@dataclass(frozen=True)
class DubMasteringEntry(JsonRecord):
    chain: tuple[JsonObject, ...]
    programme_gain_db: float
    passes: int
    limited_samples: int
    max_gain_reduction_db: float
    premix: LoudnessEntry
    master: LoudnessEntry


@dataclass(frozen=True)
class DubRenderEntry(JsonRecord):
    castline_version: str
    seed: int
    started_at: str
    finished_at: str
    timings_s: JsonObject


@dataclass(frozen=True)
class DubManifest(JsonRecord):
    """One language's published dub (schema ``castline.dub/1``); ``preset`` is ``Preset.to_manifest()``."""

    schema: str
    programme: str
    language: str
    source: SourceEntry
    background: BackgroundEntry | None
    sample_rate: int
    channels: int
    duration_samples: int
    duration_seconds: float
    preset: JsonObject
    files: tuple[FileEntry, ...]
    stems: tuple[StemEntry, ...]
    subtitles: tuple[SubtitleEntry, ...]
    cues: tuple[CueEntry, ...]
    fit: FitEntry
    duck: DuckEntry
    dialogue: DialogueEntry
    voices: tuple[DubVoiceEntry, ...]
    engines: tuple[DubEngineEntry, ...]
    mastering: DubMasteringEntry
    render: DubRenderEntry
    warnings: tuple[str, ...]
    picture: JsonObject | None = field(default=None, metadata=OMIT_NONE)
    """The video dubbed (``--video``): path, frame rate, frames, bed; the muxed files are in
    ``<programme>/picture.json``."""
    render_key: str | None = field(default=None, metadata=OMIT_NONE)
    """``castline.dub.plan.dub_key`` of the plan that made it: a re-run whose key is the same and
    whose objects are intact is up to date (``castline.dub.uptodate``)."""

    def file(self, fmt: str) -> FileEntry | None:
        return next((item for item in self.files if item.format == fmt), None)


def cue_entry(item: VoicedUnit, sample_rate: int) -> CueEntry:
    unit, fit = item.unit, item.fit
    return CueEntry(
        index=unit.index, cue=unit.cue, cue_id=unit.cue_id, part=unit.part, parts=unit.parts,
        speaker=unit.speaker, voice=unit.voice_id, text=unit.text, source_line=unit.source_line,
        slot_start_sample=unit.slot_start_sample, slot_end_sample=unit.slot_end_sample,
        speech_start_sample=item.speech_start_sample, speech_end_sample=item.speech_end_sample,
        natural_ms=samples_to_ms(fit.natural_samples, sample_rate),
        rate=fit.rate, stretch=fit.stretch,
        borrowed_ms=samples_to_ms(fit.borrowed_samples, sample_rate),
        overrun_ms=samples_to_ms(fit.overrun_samples, sample_rate),
        truncated=fit.truncated, outcome=fit.outcome, steps=tuple(fit.steps),
        takes_rendered=item.takes_rendered, takes_reused=item.takes_reused, speaker_from=unit.speaker_from,
        error=item.error)


def timing_table(voiced: VoicedLanguage, sample_rate: int) -> list[dict[str, object]]:
    """One row per cue for the Prefect table artifact (times in ms for reading)."""
    rows = []
    for item in voiced.units:
        entry = cue_entry(item, sample_rate)
        rows.append({"index": entry.index, "cue": entry.cue_id or entry.cue, "speaker": entry.speaker,
                     "slot_ms": f"{samples_to_ms(item.unit.slot_start_sample, sample_rate)}–"
                                f"{samples_to_ms(item.unit.slot_end_sample, sample_rate)}",
                     "speech_ms": f"{samples_to_ms(item.speech_start_sample, sample_rate)}–"
                                  f"{samples_to_ms(item.speech_end_sample, sample_rate)}",
                     "rate": entry.rate, "stretch": entry.stretch, "borrowed_ms": entry.borrowed_ms,
                     "overrun_ms": entry.overrun_ms, "outcome": entry.outcome, "text": item.unit.text[:60]})
    return rows


def fit_summary(voiced: VoicedLanguage) -> FitCounts:
    """Counts and shares of cues by what it took to fit them."""
    units = voiced.units
    total = len(units) or 1

    def share(count: int) -> float:
        return round(count / total, 4)

    rated = sum("rate" in item.fit.steps for item in units)
    stretched = sum(item.fit.stretch > 1.0 for item in units)
    borrowed = sum(item.fit.borrowed_samples > 0 for item in units)
    overrun = sum(item.fit.overrun_samples > 0 for item in units)
    return FitCounts(cues=len(units), fits_as_is=sum(not item.fit.steps for item in units),
                     rate=rated, stretched=stretched, borrowed=borrowed, overrun=overrun,
                     truncated=sum(item.fit.truncated for item in units),
                     share_rate=share(rated), share_stretched=share(stretched), share_borrowed=share(borrowed),
                     share_overrun=share(overrun))


def subtitle_cues(voiced: VoicedLanguage) -> list[SubtitleCue]:
    """Subtitles re-timed to the speech as placed (speaker names only where the file gave them)."""
    from castline.dub.cast import DEFAULT_SPEAKER

    def named(unit) -> bool:  # a placeholder speaker ("second speaker") is not shown as a name
        return unit.speaker != DEFAULT_SPEAKER and unit.speaker_from not in ("distinct", "default")

    return [SubtitleCue(start_sample=item.speech_start_sample, end_sample=item.speech_end_sample,
                        speaker=item.unit.speaker if named(item.unit) else "",
                        text=item.unit.text, first_of_turn=named(item.unit))
            for item in sorted(voiced.units, key=lambda item: (item.speech_start_sample, item.unit.index))]


def build_dub_manifest(plan: LanguagePlan, voiced: VoicedLanguage, mixed: MixResult,
                       files: Sequence[PublishedFile], dialogue: ObjectInfo, subtitles: Sequence[ObjectInfo],
                       timings_s: dict[str, float], started_at: str, finished_at: str) -> DubManifest:
    """The manifest of one language whose files are all stored."""
    options = plan.options
    rate = plan.sample_rate
    background = None
    if plan.background is not None:
        background = BackgroundEntry(path=plan.background.path, sha256=plan.background.sha256,
                                     sample_rate=plan.background.sample_rate, channels=plan.background.channels,
                                     duration_samples=plan.background.duration_samples,
                                     kind=plan.background.kind, description=plan.background.description)
    fit = FitEntry(**{**dataclasses.asdict(options.fit), "stretcher": voiced.stretcher,
                      **dataclasses.asdict(fit_summary(voiced))})
    return DubManifest(
        schema=SCHEMA,
        programme=plan.programme,
        language=plan.language,
        source=SourceEntry(path=plan.cue_path, format=plan.cue_format, sha256=plan.cue_sha256),
        background=background,
        sample_rate=rate,
        channels=mixed.channels,
        duration_samples=mixed.duration_samples,
        duration_seconds=round(samples_to_seconds(mixed.duration_samples, rate), 3),
        preset=JsonObject(PRESETS[options.preset].to_manifest()),
        files=tuple(FileEntry.of(item.encoded, item.stored) for item in files),
        stems=(StemEntry(name="dialogue", uri=dialogue.uri, sha256=dialogue.sha256, bytes=dialogue.bytes,
                         format="WAV float32 mono", gain="the mix's programme gain",
                         reading=LoudnessEntry.of(mixed.dialogue_reading)),),
        subtitles=tuple(SubtitleEntry.of(info) for info in subtitles),
        cues=tuple(cue_entry(item, rate) for item in voiced.units),
        fit=fit,
        duck=DuckEntry(**dataclasses.asdict(options.duck)),
        dialogue=DialogueEntry(target_lufs=round(mixed.dialogue_target_lufs, 3),
                               source_dialogue_lufs=(None if mixed.source_dialogue_lufs is None
                                                     else round(mixed.source_dialogue_lufs, 3)),
                               speaker_gains_db=JsonObject(dict(mixed.speaker_gains_db))),
        voices=tuple(DubVoiceEntry(id=voice.voice_id, name=voice.display_name, language=voice.language,
                                   engine=voice.engine, engine_voice=voice.engine_voice,
                                   engine_options=JsonObject(dict(voice.engine_options)),
                                   profile_hash=voice.profile_hash, cloned=voice.is_clone) for voice in plan.voices),
        engines=tuple(DubEngineEntry(voice=voice_id, version=identity) for voice_id, identity in plan.engines),
        mastering=DubMasteringEntry(chain=chain_steps(mixed.chain), programme_gain_db=round(mixed.mastered.gain_db, 4),
                                    passes=mixed.mastered.passes, limited_samples=mixed.mastered.limited_samples,
                                    max_gain_reduction_db=round(mixed.mastered.max_gain_reduction_db, 3),
                                    premix=LoudnessEntry.of(mixed.premix_reading),
                                    master=LoudnessEntry.of(mixed.mastered.reading)),
        render=DubRenderEntry(castline_version=__version__, seed=options.seed, started_at=started_at,
                              finished_at=finished_at, timings_s=JsonObject({k: round(v, 3) for k, v in timings_s.items()})),
        warnings=tuple(plan.warnings),
        picture=_picture_entry(plan),
        render_key=dub_key(plan),
    )


def _picture_entry(plan: LanguagePlan) -> JsonObject | None:
    picture = plan.picture
    if picture is None:
        return None
    bed = plan.background
    return JsonObject({"path": picture.path, "sha256": picture.sha256, "frame_rate": f"{picture.fps_num}/{picture.fps_den}",
                       "frames": picture.frames, "duration_samples": picture.duration_samples,
                       "bed": bed.kind if bed else "none",
                       "bed_description": bed.description if bed else "no bed: dialogue only (--background none)",
                       "dubbed": f"{plan.programme}/picture.json"})
