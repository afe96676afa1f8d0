"""Everything a dub needs, validated before any audio is made: one plan per language.

Slots are integer samples at the mix rate (the background's, else 48 kHz). A dialogue cue's slot
is shared between its utterances in proportion to their length in characters.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import soundfile

from castline.dub.cast import (DEFAULT_SPEAKER, LanguageCast, load_cast_file, normalise_language,
                               resolve_voices)
from castline.dub.cues import CueSheet, load_cue_sheet
from castline.dub.options import DEFAULT_SAMPLE_RATE, DubOptions
from castline.dub.stretch import stretcher_name
from castline.engines.registry import engine_class
from castline.core.errors import DubError, StorageError
from castline import __version__
from castline.core.hashing import content_hash, derive_seed, sha256_file
from castline.storage import open_store, validate_key
from castline.core.timebase import ms_to_samples
from castline.voices.profiles import VoiceProfile, default_voices_dir, load_voice_library

NO_BACKGROUND_TAIL_MS = 500
"""Without a background, the mix ends this long after the last speech (or slot) ends."""
_LANGUAGE_SUFFIX = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})?$", re.IGNORECASE)


@dataclass(frozen=True)
class DubUnit:
    """One utterance to voice and place: a whole cue, or one speaker's part of a dialogue cue.

    ``limit_sample``: where the next unit's slot starts (or the programme ends): borrowing stops
    before it. ``cue``: the cue's number in the repaired sheet; ``cue_id``: its id in the file.
    """

    index: int
    cue: int
    cue_id: str
    part: int
    parts: int
    speaker: str
    voice_id: str
    text: str
    slot_start_sample: int
    slot_end_sample: int
    limit_sample: int
    source_line: int
    seed: int
    speaker_from: str = "file"
    """Where ``speaker`` came from: "file" (a prefix or ``<v>`` span), "cast" (the cast file's
    cue → speaker map), "alternation" (a dialogue cue's part, from the neighbouring cues'
    alternating speakers), "distinct" (a dialogue cue's second unnamed part: a speaker of its
    own, so a voice of its own) or "default" (the file names nobody)."""

    @property
    def slot_samples(self) -> int:
        return self.slot_end_sample - self.slot_start_sample

    @property
    def gap_samples(self) -> int:
        return max(0, self.limit_sample - self.slot_end_sample)


BED_KINDS = {
    "stem": "music-and-effects stem (no dialogue)",
    "programme-audio": "the programme's own audio, its dialogue ducked under the dub (voice-over style)",
}


@dataclass(frozen=True)
class Background:
    """The bed the dub is mixed over (read in blocks, never whole): a music-and-effects stem
    (``kind`` "stem"), or the programme video's own audio (``kind`` "programme-audio": demuxed at
    mix time, its dialogue ducked under the dub like a voice-over)."""

    path: str
    sample_rate: int
    channels: int
    duration_samples: int
    sha256: str
    kind: str = "stem"

    @property
    def description(self) -> str:
        return BED_KINDS[self.kind]


@dataclass(frozen=True)
class Picture:
    """The programme video the dub goes back into: frame rate as a fraction (``fps_num/fps_den``),
    counted frames, and its duration in samples at the plan's rate (what every track lasts)."""

    path: str
    sha256: str
    width: int | None
    height: int | None
    fps_num: int
    fps_den: int
    frames: int
    duration_samples: int
    audio_tracks: int
    video_codec: str


@dataclass(frozen=True)
class LanguagePlan:
    """One language's dub: its units in time order, voices, and where the mix goes."""

    programme: str
    language: str
    cue_path: str
    cue_sha256: str
    cue_format: str
    units: tuple[DubUnit, ...]
    voices: tuple[VoiceProfile, ...]
    engines: tuple[tuple[str, str], ...]
    background: Background | None
    sample_rate: int
    channels: int
    warnings: tuple[str, ...]
    options: DubOptions
    picture: Picture | None = None

    @property
    def programme_samples(self) -> int | None:
        """The programme's length in samples when something fixes it (the picture, else the
        background); None for an audio-only dub without background (it ends after the speech)."""
        if self.picture is not None:
            return self.picture.duration_samples
        return self.background.duration_samples if self.background is not None else None

    def voice(self, voice_id: str) -> VoiceProfile:
        return next(profile for profile in self.voices if profile.voice_id == voice_id)

    @property
    def prefix(self) -> str:
        """Store folder of this language's outputs: ``<programme>/<language>``."""
        return f"{self.programme}/{self.language}"


def dub_key(plan: LanguagePlan) -> str:
    """Content hash of everything that shapes one language's published dub (its ``render_key``):
    the cue sheet's content and the units planned from it (text, slots, speakers, voices, seeds),
    the bed's and the picture's content hashes, the options that shape the output (cast, preset,
    formats, fit, duck, dialogue level, codecs, containers, QA policy), voice profile hashes,
    engine identities and castline's version. Paths do not count: the same inputs moved elsewhere
    give the same key."""
    options = plan.options
    background, picture = plan.background, plan.picture
    return content_hash({
        "castline": __version__,
        "programme": plan.programme,
        "language": plan.language,
        "cues": plan.cue_sha256,
        "cast": sha256_file(options.cast) if options.cast else None,
        "units": [[unit.cue, unit.cue_id, unit.part, unit.parts, unit.speaker, unit.speaker_from, unit.voice_id,
                   unit.text, unit.slot_start_sample, unit.slot_end_sample, unit.limit_sample, unit.seed]
                  for unit in plan.units],
        "voices": [voice.profile_hash for voice in plan.voices],
        "engines": [list(engine) for engine in plan.engines],
        "background": (None if background is None else
                       [background.sha256, background.kind, background.sample_rate, background.channels]),
        "picture": (None if picture is None else
                    [picture.sha256, picture.fps_num, picture.fps_den, picture.frames, picture.duration_samples]),
        "sample_rate": plan.sample_rate,
        "preset": options.preset,
        "formats": list(options.formats),
        "fit": dataclasses.asdict(options.fit),
        "duck": dataclasses.asdict(options.duck),
        "dialogue_lufs": options.dialogue_lufs,
        "match_dialogue": sha256_file(options.match_dialogue) if options.match_dialogue else None,
        "video": ([list(options.containers), options.video_audio_codec, options.keep_original_audio]
                  if picture is not None else None),
        "qa": options.qa,
        "seed": options.seed,
    })


def prepare_dub(options: DubOptions) -> tuple[LanguagePlan, ...]:
    """Validate every input (cue files, languages, background, cast, voices, store) and plan each
    language. Errors are one line naming the file and line or option; nothing is written."""
    try:
        open_store(options.out)
    except StorageError as error:
        raise DubError(error.message, field="--out") from error
    stretcher_name(options.fit.stretcher)
    library = load_voice_library(options.voices_dir or default_voices_dir())
    casts = load_cast_file(options.cast) if options.cast else {}
    media = _probe_video(options.video) if options.video else None
    if options.background_none:
        background = None
    elif options.background:
        background = _background(options.background)
    elif media is not None:
        background = _programme_audio_bed(options.video, media)
    else:
        background = None
    if options.match_dialogue:
        _audio_info(options.match_dialogue, "--match-dialogue")
    programme = _programme_id(options)
    plans: list[LanguagePlan] = []
    for position, cue_path in enumerate(options.cues):
        if not Path(cue_path).is_file():
            raise DubError("cue file not found", source=cue_path)
        given = options.languages[position] if options.languages else None
        preliminary = _language_from_name(cue_path) if given is None else None
        cast = casts.get(normalise_language(given)) if given else casts.get(preliminary or "")
        known = [speaker for speaker, _ in cast.voices if speaker != "*"] if cast else []
        sheet = load_cue_sheet(cue_path, known_speakers=known)
        language = _language(given, sheet, cue_path)
        cast = casts.get(language, casts.get(language.split("-")[0]))
        plans.append(_plan_language(programme, language, sheet, cast, background, library, options, media))
    languages = [plan.language for plan in plans]
    duplicated = sorted({code for code in languages if languages.count(code) > 1})
    if duplicated:
        raise DubError(f"language '{duplicated[0]}' is given by more than one cue file", field="--lang")
    return tuple(plans)


def _plan_language(programme: str, language: str, sheet: CueSheet, cast: LanguageCast | None,
                   background: Background | None, library, options: DubOptions, media=None) -> LanguagePlan:
    sample_rate = background.sample_rate if background else DEFAULT_SAMPLE_RATE
    picture = _picture(options.video, media, sample_rate) if media is not None else None
    programme_end = (picture.duration_samples if picture is not None else
                     background.duration_samples if background is not None else None)
    ends = "the video" if picture is not None else "the background"
    warnings = list(sheet.repairs)
    speakers_by_cue = cue_speakers(sheet, cast)
    pieces = []
    for cue in sheet.cues:
        start = ms_to_samples(cue.start_ms, sample_rate)
        end = ms_to_samples(cue.end_ms, sample_rate)
        if programme_end is not None:
            if start >= programme_end:
                warnings.append(f"{sheet.source_path}:{cue.line}: cue starts after {ends} ends: skipped")
                continue
            if end > programme_end:
                warnings.append(f"{sheet.source_path}:{cue.line}: cue runs past the end of {ends}: "
                                f"its slot ends with it")
                end = programme_end
        weights = [max(1, len(utterance.text)) for utterance in cue.utterances]
        edges = [start + round((end - start) * sum(weights[:k]) / sum(weights)) for k in range(len(weights) + 1)]
        for part, utterance in enumerate(cue.utterances):
            speaker, source = speakers_by_cue[cue.number][part]
            pieces.append((cue, part, speaker, utterance.text, edges[part], edges[part + 1], source))
    if not pieces:
        raise DubError(f"no cue falls inside {ends}", source=sheet.source_path)
    speakers = list(dict.fromkeys(piece[2] for piece in pieces))
    voices, cast_warnings = resolve_voices(language, speakers, cast, library, sheet.source_path)
    warnings.extend(cast_warnings)
    last_limit = (programme_end if programme_end is not None else
                  pieces[-1][5] + ms_to_samples(options.fit.max_borrow_ms + options.fit.min_gap_ms, sample_rate))
    units = []
    for position, (cue, part, speaker, text, start, end, speaker_from) in enumerate(pieces):
        limit = pieces[position + 1][4] if position + 1 < len(pieces) else last_limit
        voice = voices[speaker]
        units.append(DubUnit(index=position + 1, cue=cue.number, cue_id=cue.source_id, part=part,
                             parts=len(cue.utterances), speaker=speaker, voice_id=voice.voice_id, text=text,
                             slot_start_sample=start, slot_end_sample=end, limit_sample=max(limit, end),
                             source_line=cue.line, seed=derive_seed(options.seed, f"{voice.voice_id}\n{text}"),
                             speaker_from=speaker_from))
    profiles = {voice.voice_id: voice for voice in voices.values()}
    for voice in profiles.values():
        if engine_class(voice.engine).capabilities.cloning:
            if voice.consent is None:
                raise DubError(f"voice '{voice.voice_id}' has no consent record, and engine '{voice.engine}' clones "
                               f"voices: cloning needs consent (castline voices add … --consent FILE)",
                               source=voice.source_path)
            if not options.engine_options.model:
                raise DubError(f"voice '{voice.voice_id}' uses engine '{voice.engine}', which needs weights: "
                               f"pass --model DIR|HUB_ID", field="--model")
    engines = tuple(sorted({(voice.voice_id, engine_class(voice.engine).identity(voice, options.engine_options))
                            for voice in profiles.values()}))
    return LanguagePlan(programme=programme, language=language, cue_path=sheet.source_path,
                        cue_sha256=sha256_file(sheet.source_path), cue_format=sheet.format, units=tuple(units),
                        voices=tuple(sorted(profiles.values(), key=lambda v: v.voice_id)), engines=engines,
                        background=background, sample_rate=sample_rate,
                        channels=background.channels if background else 1, warnings=tuple(warnings),
                        options=options, picture=picture)


SECOND_SPEAKER = "second speaker"
"""The speaker of a dialogue cue's unnamed second part when its neighbours do not say who."""


def cue_speakers(sheet: CueSheet, cast: LanguageCast | None) -> dict[int, list[tuple[str, str]]]:
    """``(speaker, where it came from)`` for every utterance, by cue number.

    A named utterance keeps its name ("file"); a cue the cast maps takes that speaker ("cast").
    The two lines of a ``- line`` / ``- line`` cue are two people: unnamed parts are taken from
    the neighbouring cues when they alternate — the speaker before the cue (P) just spoke and the
    one after it (N) speaks next, so with P ≠ N the parts are N then P ("alternation"); when the
    neighbours do not alternate, the unnamed part gets a speaker distinct from the other part's
    ("distinct": ``SECOND_SPEAKER``, or the default speaker), hence a distinct voice.
    """
    named: list[list[str | None]] = []
    for cue in sheet.cues:
        mapped = cast.speaker_for_cue(cue.source_id or str(cue.number)) if cast else None
        named.append([utterance.speaker or mapped for utterance in cue.utterances])
    result: dict[int, list[tuple[str, str]]] = {}
    for position, cue in enumerate(sheet.cues):
        parts = named[position]
        sources = ["file" if utterance.speaker else ("cast" if parts[k] else "default")
                   for k, utterance in enumerate(cue.utterances)]
        if len(parts) >= 2 and None in parts:
            before = next((p for cue_parts in reversed(named[:position]) for p in reversed(cue_parts) if p), None)
            after = next((p for cue_parts in named[position + 1:] for p in cue_parts if p), None)
            if before and after and before != after and len(parts) == 2:
                for k, guess in enumerate((after, before)):
                    if parts[k] is None and guess not in parts:
                        parts[k], sources[k] = guess, "alternation"
            for k in range(len(parts)):
                if parts[k] is None:
                    taken = set(parts)
                    options = [DEFAULT_SPEAKER, SECOND_SPEAKER] + [f"{SECOND_SPEAKER} {n}" for n in range(2, 10)]
                    parts[k] = next(name for name in options if name not in taken)
                    sources[k] = "distinct" if k or any(parts[1:]) else "default"
        result[cue.number] = [(parts[k] or DEFAULT_SPEAKER, sources[k]) for k in range(len(parts))]
    return result


def _audio_info(path: str, field: str):
    if not Path(path).is_file():
        raise DubError("audio file not found", source=path, field=field)
    try:
        return soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise DubError("not an audio file libsndfile reads (WAV, FLAC, AIFF, Ogg); convert it first, e.g. "
                       "ffmpeg -i in.mp4 -vn -c:a pcm_s24le stem.wav", source=path, field=field) from error


def _background(path: str) -> Background:
    info = _audio_info(path, "--background")
    if info.frames <= 0:
        raise DubError("the background has no samples", source=path, field="--background")
    return Background(path=str(Path(path).resolve()), sample_rate=int(info.samplerate), channels=int(info.channels),
                      duration_samples=int(info.frames), sha256=sha256_file(path))


def _probe_video(path: str):
    from castline.dub.video import probe_media

    if not Path(path).is_file():
        raise DubError("video file not found", source=path, field="--video")
    media = probe_media(path)
    if media.video is None:
        raise DubError("no video stream in this file (for an audio-only programme pass --background instead)",
                       source=path, field="--video")
    if media.frame_rate is None or media.frames is None:
        raise DubError("cannot tell the video's frame rate and frame count from ffmpeg", source=path,
                       field="--video")
    return media


def _picture(path: str, media, sample_rate: int) -> Picture:
    return Picture(path=str(Path(path).resolve()), sha256=sha256_file(path), width=media.width, height=media.height,
                   fps_num=media.frame_rate.numerator, fps_den=media.frame_rate.denominator, frames=media.frames,
                   duration_samples=media.duration_samples(sample_rate), audio_tracks=len(media.audio),
                   video_codec=media.video.codec)


_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7,
                    "7.1": 8}


def _programme_audio_bed(path: str, media) -> Background:
    from castline.dub.video import VIDEO_SAMPLE_RATE

    if not media.audio:
        raise DubError("the video has no audio track to use as the bed: pass --background me.wav (an M&E stem) "
                       "or --background none (dialogue only)", source=path, field="--video")
    track = media.audio[0]
    layout = (track.channels or "").split("(")[0].strip()
    channels = _LAYOUT_CHANNELS.get(layout)
    if channels is None:
        match = re.match(r"(\d+) channels", track.channels or "")
        channels = int(match.group(1)) if match else 2
    rate = max(VIDEO_SAMPLE_RATE, track.sample_rate or VIDEO_SAMPLE_RATE)
    return Background(path=str(Path(path).resolve()), sample_rate=rate, channels=channels,
                      duration_samples=media.duration_samples(rate), sha256=sha256_file(path),
                      kind="programme-audio")


def _language_from_name(path: str) -> str | None:
    """``es.srt`` → es; ``show.de.vtt`` → de; ``show_pt-BR.srt`` → pt-br; else None."""
    stem = Path(path).stem
    for candidate in (stem, stem.rsplit(".", 1)[-1], re.split(r"[_ ]", stem)[-1]):
        if _LANGUAGE_SUFFIX.match(candidate):
            return normalise_language(candidate)
    return None


def _language(given: str | None, sheet: CueSheet, path: str) -> str:
    if given:
        try:
            return normalise_language(given)
        except ValueError as error:
            raise DubError(str(error), field="--lang") from error
    from_name = _language_from_name(path)
    if from_name:
        return from_name
    if sheet.language:
        try:
            return normalise_language(sheet.language)
        except ValueError:
            pass
    raise DubError("cannot tell this file's language from its name (e.g. es.srt, show.de.vtt): pass --lang",
                   source=path)


def _programme_id(options: DubOptions) -> str:
    if options.programme:
        candidate = options.programme
    else:
        named = options.video or (None if options.background_none else options.background)
        source = named or options.cues[0]
        stem = Path(source).stem
        if not named and _language_from_name(source) and "." in stem:
            stem = stem.rsplit(".", 1)[0]
        candidate = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "programme"
        if _LANGUAGE_SUFFIX.match(candidate) and not named:
            candidate = "programme"
    try:
        validate_key(candidate)
    except StorageError as error:
        raise DubError(f"'{candidate}' cannot be a programme id (letters, digits, '.', '_', '-')",
                       field="--programme") from error
    if candidate.startswith("_"):
        raise DubError("a programme id cannot start with '_'", field="--programme")
    return candidate
