"""Parse a script, resolve its voices and engines, and plan chunk jobs keyed by content hash."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace

from castline import PROJECT_SAMPLE_RATE
from castline.engines.registry import engine_class, voice_usability
from castline.qa.episode import ChunkFacts, EpisodeFacts
from castline.core.errors import ScriptError, VoiceError
from castline.core.hashing import content_hash, derive_seed
from castline.render.options import RenderOptions
from castline.render.chunking import Boundary, plan_chunks
from castline.dsp.presets import PRESETS, Preset
from castline.script.load import load_script
from castline.script.lexicon import Lexicon, compile_lexicons, load_lexicon
from castline.script.manuscript_markdown import ManuscriptOptions
from castline.script.model import Episode, Turn
from castline.script.spoken import spoken_form
from castline.voices.profiles import VoiceLibrary, VoiceProfile, default_voices_dir, load_voice_library

CHUNK_FORMAT_VERSION = "flac-pcm24-mono/resample-poly-kaiser8/v1"
ALIGNMENT_VERSION = "pause-snapping/v1"
"""Part of every window key: how a window's waveform is split into its lines."""
"""Part of every chunk key: change it when the chunk file or resampling changes."""

SKIPPED_CHUNK_MS = 250
"""A chunk its voice cannot speak is this much silence, between its usual pauses."""
UNSPEAKABLE_FLAG = "unspeakable"
"""QA flag (and manifest ``skipped`` reason prefix) of such a chunk."""

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class ChunkJob:
    """One chunk to synthesise (or reuse): its text, voice, engine, seed and cache ``key``."""

    index: int
    turn: int
    position: int
    speaker: str
    voice_id: str
    engine: str
    text: str
    boundary: Boundary
    pause_before_ms: int | None
    seed: int
    key: str
    source_line: int | None
    window: int | None = None
    skipped: str | None = None
    """Why this chunk is not synthesised (its voice cannot speak the text); it is stored as
    ``SKIPPED_CHUNK_MS`` of silence and flagged. None for every chunk that is spoken."""
    spoken_text: str = ""
    """What the engine is sent (``text`` after lexicons and normalisation)."""
    reference_text: str = ""
    """What QA should hear (the spoken text with phoneme markup read as its word)."""
    lexicon_rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.spoken_text:
            object.__setattr__(self, "spoken_text", self.text)
        if not self.reference_text:
            object.__setattr__(self, "reference_text", self.spoken_text)


@dataclass(frozen=True)
class WindowJob:
    """Consecutive chunks one windowed engine renders in a single call (≤ 4 speakers).

    ``voice_ids`` are in slot order; ``key`` is the content hash of everything that shapes the
    window's audio; ``estimated_seconds`` sizes the engine's token budget.
    """

    index: int
    chunk_indexes: tuple[int, ...]
    engine: str
    voice_ids: tuple[str, ...]
    seed: int
    key: str
    estimated_seconds: float


@dataclass(frozen=True)
class RenderPlan:
    """Everything later stages need, as small references: no audio."""

    episode: Episode
    preset: Preset
    voices: tuple[VoiceProfile, ...]
    engines: tuple[tuple[str, str], ...]
    jobs: tuple[ChunkJob, ...]
    options: RenderOptions
    windows: tuple[WindowJob, ...] = ()

    def voice(self, voice_id: str) -> VoiceProfile:
        return next(profile for profile in self.voices if profile.voice_id == voice_id)


def prepare_render(options: RenderOptions) -> RenderPlan:
    """Validate everything a render needs before any audio is made; errors are one line."""
    library = load_voice_library(options.voices_dir or default_voices_dir())
    usable = _usable_voice_ids(library, options.engine)
    # Unusable and broken profiles come last: cast only when named, and then their error is the answer.
    known = usable + [v for v in library.ids() if v not in usable] + library.broken_ids()
    episode = load_script(options.script, known_voices=known,
                          cast=dict(options.cast) or None, preset=options.preset, known_presets=list(PRESETS),
                          manuscript_options=ManuscriptOptions(options.narrator, options.dialogue_pattern,
                                                               options.front_matter))
    voices = _resolve_voices(episode, library, options.engine)
    identities = {voice.voice_id: engine_class(_engine_for(voice, options.engine)).identity(
        voice, options.engine_options) for voice in voices.values()}
    unspeakable = unspeakable_turns(episode, voices, options.engine)
    if unspeakable:
        episode = _refuse_or_warn(episode, unspeakable, voices, options)
    max_chars = min(engine_class(_engine_for(v, options.engine)).capabilities.max_chars for v in voices.values())
    target = min(engine_class(_engine_for(v, options.engine)).capabilities.target_chars for v in voices.values())
    spoken = _spoken_rewriter(episode, voices, options)
    chunks = plan_chunks(episode, max_chars=max_chars, target_chars=target, spoken=spoken)
    turns = {turn.index: turn for turn in episode.turns}
    jobs = []
    for chunk in chunks:
        voice = voices[chunk.speaker]
        engine = _engine_for(voice, options.engine)
        # Keys and seeds cover the spoken text, not the lexicon files: editing one rule re-renders
        # only the chunks whose spoken text changed (and no rewrite keeps the keys of before).
        seed = derive_seed(options.seed, f"{voice.voice_id}\n{chunk.spoken_text}")
        material = {"text": chunk.spoken_text, "voice": voice.cache_identity(), "engine": engine,
                    "engine_identity": identities[voice.voice_id], "seed": seed,
                    "sample_rate": PROJECT_SAMPLE_RATE, "format": CHUNK_FORMAT_VERSION}
        skipped = unspeakable.get(chunk.turn)
        if skipped is not None:  # its silence must never stand in for speech, nor speech for it
            material["skipped"] = skipped
        jobs.append(ChunkJob(index=chunk.index, turn=chunk.turn, position=chunk.position, speaker=chunk.speaker,
                             voice_id=voice.voice_id, engine=engine, text=chunk.text, boundary=chunk.boundary,
                             pause_before_ms=chunk.pause_before_ms, seed=seed, key=content_hash(material),
                             source_line=turns[chunk.turn].source.line, skipped=skipped,
                             spoken_text=chunk.spoken_text, reference_text=chunk.reference_text,
                             lexicon_rules=chunk.lexicon_rules))
    engines = tuple(sorted({(_engine_for(v, options.engine), identities[v.voice_id]) for v in voices.values()}))
    jobs, windows = group_windows(jobs, voices_by_id={v.voice_id: v for v in voices.values()},
                                  identities=identities, options=options)
    return RenderPlan(episode=episode, preset=PRESETS[episode.meta.preset],
                      voices=tuple(sorted(voices.values(), key=lambda v: v.voice_id)), engines=engines,
                      jobs=tuple(jobs), options=options, windows=tuple(windows))


WORDS_PER_SECOND = 2.5
"""Speaking-rate estimate (150 words a minute) for window token budgets."""


def spoken_words(text: str) -> int:
    """Words for sizing windows: space-separated words, plus one per CJK character (those
    scripts have no spaces, and one character is about one spoken syllable)."""
    cjk = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + cjk


def group_windows(jobs: list[ChunkJob], *, voices_by_id: dict[str, VoiceProfile], identities: dict[str, str],
                  options: RenderOptions) -> tuple[list[ChunkJob], list[WindowJob]]:
    """Group consecutive chunks of windowed engines into windows of at most ``options.window_words``
    words and 4 speakers; a scene break starts a new window. With ``exact_timings`` each chunk is
    its own window, so no boundary inside a window has to be estimated. Chunks in a window get
    keys derived from the window's key (the window is what gets rendered)."""
    from dataclasses import replace

    from castline.render.chunking import Boundary

    groups: list[list[ChunkJob]] = []
    for job in jobs:
        if not engine_class(job.engine).windowed:
            continue
        current = groups[-1] if groups else None
        words = spoken_words(job.spoken_text)
        fits = (current is not None and not options.exact_timings and current[-1].index == job.index - 1
                and current[-1].engine == job.engine and job.boundary != Boundary.SCENE
                and len({j.voice_id for j in current} | {job.voice_id}) <= 4
                and sum(spoken_words(j.spoken_text) for j in current) + words <= options.window_words)
        if fits:
            current.append(job)
        else:
            groups.append([job])
    updated = {job.index: job for job in jobs}
    windows = []
    for number, group in enumerate(groups):
        slots = tuple(dict.fromkeys(job.voice_id for job in group))
        lines = [[slots.index(job.voice_id), job.spoken_text] for job in group]
        seed = derive_seed(options.seed, content_hash(lines))
        key = content_hash({"lines": lines, "voices": [voices_by_id[v].cache_identity() for v in slots],
                            "engine": group[0].engine, "identities": [identities[v] for v in slots],
                            "seed": seed, "sample_rate": PROJECT_SAMPLE_RATE, "format": CHUNK_FORMAT_VERSION,
                            "alignment": ALIGNMENT_VERSION})
        words = sum(spoken_words(job.spoken_text) for job in group)
        windows.append(WindowJob(index=number, chunk_indexes=tuple(job.index for job in group),
                                 engine=group[0].engine, voice_ids=slots, seed=seed, key=key,
                                 estimated_seconds=max(1.0, words / WORDS_PER_SECOND)))
        for position, job in enumerate(group):
            updated[job.index] = replace(job, window=number, seed=seed,
                                         key=content_hash({"window": key, "line": position}))
    return [updated[job.index] for job in jobs], windows


def prepare_plan_episode(options: RenderOptions) -> tuple[Episode, dict[str, VoiceProfile]]:
    """The validated episode and each speaker's voice, resolved as ``prepare_render`` does, without
    planning chunks (for ``castline lexicon check``)."""
    library = load_voice_library(options.voices_dir or default_voices_dir())
    usable = _usable_voice_ids(library, options.engine)
    known = usable + [v for v in library.ids() if v not in usable] + library.broken_ids()
    episode = load_script(options.script, known_voices=known, cast=dict(options.cast) or None, preset=options.preset,
                          known_presets=list(PRESETS),
                          manuscript_options=ManuscriptOptions(options.narrator, options.dialogue_pattern,
                                                               options.front_matter))
    return episode, _resolve_voices(episode, library, options.engine)


def lexicon_files(options: RenderOptions, episode: Episode, voice: VoiceProfile) -> tuple[str, ...]:
    """A voice's lexicon files in precedence order: ``--lexicon`` (in the order given), the
    script's ``episode.lexicons``, the voice profile's ``lexicons``, the show file's ``lexicons``.
    A file named twice keeps its first place."""
    return tuple(dict.fromkeys((*options.lexicons, *episode.meta.lexicons, *voice.lexicons,
                                *options.show_lexicons)))


def _spoken_rewriter(episode: Episode, voices: dict[str, VoiceProfile], options: RenderOptions):
    """A turn → rewrite function for chunk planning, or None when nothing rewrites text."""
    loaded: dict[str, Lexicon] = {}
    per_speaker: dict[str, tuple[Lexicon, ...]] = {}
    for speaker, voice in voices.items():
        files = lexicon_files(options, episode, voice)
        for path in files:
            if path not in loaded:
                loaded[path] = load_lexicon(path)
        per_speaker[speaker] = tuple(loaded[f] for f in files)
    if not options.normalise and not any(per_speaker.values()):
        return None
    compiled = {speaker: compile_lexicons(per_speaker[speaker], engine=_engine_for(voice, options.engine),
                                          voice_id=voice.voice_id, language=episode.meta.language)
                for speaker, voice in voices.items()}

    def rewrite(turn: Turn):
        return spoken_form(turn.text, language=episode.meta.language, normalise=options.normalise,
                           compiled=compiled[turn.speaker])

    return rewrite


def _engine_for(voice: VoiceProfile, engine_override: str | None) -> str:
    return engine_override or voice.engine


def _usable_voice_ids(library: VoiceLibrary, engine: str | None) -> list[str]:
    return [profile.voice_id for profile in library.profiles if voice_usability(profile, engine).usable]


def _resolve_voices(episode: Episode, library: VoiceLibrary, engine: str | None) -> dict[str, VoiceProfile]:
    resolved: dict[str, VoiceProfile] = {}
    for entry in episode.cast:
        profile = library.get(entry.voice)
        usability = voice_usability(profile, engine)
        if not usability.usable:
            raise VoiceError(f"voice '{profile.voice_id}' (speaker {entry.speaker}) is not usable here: "
                             f"{usability.reason}", source=episode.source_path)
        engine_name = _engine_for(profile, engine)
        if engine_class(engine_name).capabilities.cloning and profile.consent is None:
            raise VoiceError(f"voice '{profile.voice_id}' has no consent record, and engine '{engine_name}' clones "
                             f"voices: cloning needs consent (castline voices add … --consent FILE)",
                             source=profile.source_path)
        resolved[entry.speaker] = profile
    return resolved


def unspeakable_turns(episode: Episode, voices: dict[str, VoiceProfile], engine: str | None) -> dict[int, str]:
    """Turns whose voice cannot speak any of their text, with the reason: CJK text and nothing
    else readable (no other letter or digit), cast onto a voice of another language — its
    engine would say nothing, or garble it. Lines that mix in some CJK are still spoken (with a
    warning; QA judges them). Windowed engines (vibevoice) read several languages: left to QA."""
    found, mixed = {}, []
    for turn in episode.turns:
        voice = voices[turn.speaker]
        if voice.language.split("-")[0].lower() in _CJK_LANGUAGES or engine_class(_engine_for(voice, engine)).windowed:
            continue
        if not _CJK.search(turn.text):
            continue
        if any(c.isalnum() for c in _CJK.sub("", turn.text)):
            mixed.append(str(turn.source.line))
        else:
            found[turn.index] = (f"{UNSPEAKABLE_FLAG}: CJK text for voice '{voice.voice_id}' "
                                 f"(language {voice.language})")
    if mixed:
        shown = ", ".join(mixed[:8]) + (f" and {len(mixed) - 8} more" if len(mixed) > 8 else "")
        warnings.warn(f"{episode.source_path}: lines {shown} contain CJK text their voice cannot read; "
                      f"expect that part to be skipped or garbled", stacklevel=3)
    return found


_CJK_LANGUAGES = {"zh", "ja", "ko", "yue", "cmn"}


def _refuse_or_warn(episode: Episode, unspeakable: dict[int, str], voices: dict[str, VoiceProfile],
                    options: RenderOptions) -> Episode:
    """``--qa strict``: refuse before any synthesis, naming the lines. Otherwise add a warning to
    the episode's (the command line prints them; the manifest keeps them): those lines become silence."""
    lines = [str(turn.source.line) for turn in episode.turns if turn.index in unspeakable]
    cast = sorted({voices[turn.speaker].voice_id for turn in episode.turns if turn.index in unspeakable})
    shown = ", ".join(lines[:8]) + (f" and {len(lines) - 8} more" if len(lines) > 8 else "")
    what = (f"line{'s' if len(lines) > 1 else ''} {shown}: CJK text that voice{'s' if len(cast) > 1 else ''} "
            f"{', '.join(cast)} cannot speak")
    if options.qa.policy == "strict":
        raise ScriptError(f"{what} (--qa strict: nothing synthesised; cast a voice of that language, or use "
                          f"--qa warn to render the rest with those lines silent)", source=episode.source_path)
    message = f"{episode.source_path}: {what}; rendered as a pause and flagged"
    return replace(episode, warnings=tuple(episode.warnings) + (message,))


def episode_facts(plan: RenderPlan) -> EpisodeFacts:
    """The plan as episode QA reads it (QA sits below rendering and takes its own records)."""
    jobs = tuple(ChunkFacts(index=job.index, turn=job.turn, speaker=job.speaker, voice_id=job.voice_id,
                            engine=job.engine, text=job.reference_text) for job in plan.jobs)
    return EpisodeFacts(plan.episode.meta.episode_id, plan.episode.meta.language, plan.preset, plan.options.qa, jobs)
