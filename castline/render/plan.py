"""Parse a script, resolve its voices and engines, and plan chunk jobs keyed by content hash."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from castline import PROJECT_SAMPLE_RATE
from castline.engines.registry import engine_class, voice_usability
from castline.qa.episode import ChunkFacts, EpisodeFacts
from castline.core.errors import VoiceError
from castline.core.hashing import content_hash, derive_seed
from castline.render.options import RenderOptions
from castline.render.chunking import Boundary, plan_chunks
from castline.dsp.presets import PRESETS, Preset
from castline.script.load import load_script
from castline.script.model import Episode
from castline.voices.profiles import VoiceLibrary, VoiceProfile, default_voices_dir, load_voice_library

CHUNK_FORMAT_VERSION = "flac-pcm24-mono/resample-poly-kaiser8/v1"
ALIGNMENT_VERSION = "pause-snapping/v1"
"""Part of every window key: how a window's waveform is split into its lines."""
"""Part of every chunk key: change it when the chunk file or resampling changes."""

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
    episode = load_script(options.script, known_voices=usable + [v for v in library.ids() if v not in usable],
                          cast=dict(options.cast) or None, preset=options.preset, known_presets=list(PRESETS))
    voices = _resolve_voices(episode, library, options.engine)
    identities = {voice.voice_id: engine_class(_engine_for(voice, options.engine)).identity(
        voice, options.engine_options) for voice in voices.values()}
    _warn_language(episode, voices)
    max_chars = min(engine_class(_engine_for(v, options.engine)).capabilities.max_chars for v in voices.values())
    target = min(engine_class(_engine_for(v, options.engine)).capabilities.target_chars for v in voices.values())
    chunks = plan_chunks(episode, max_chars=max_chars, target_chars=target)
    turns = {turn.index: turn for turn in episode.turns}
    jobs = []
    for chunk in chunks:
        voice = voices[chunk.speaker]
        engine = _engine_for(voice, options.engine)
        seed = derive_seed(options.seed, f"{voice.voice_id}\n{chunk.text}")
        key = content_hash({"text": chunk.text, "voice": voice.cache_identity(), "engine": engine,
                            "engine_identity": identities[voice.voice_id], "seed": seed,
                            "sample_rate": PROJECT_SAMPLE_RATE, "format": CHUNK_FORMAT_VERSION})
        jobs.append(ChunkJob(index=chunk.index, turn=chunk.turn, position=chunk.position, speaker=chunk.speaker,
                             voice_id=voice.voice_id, engine=engine, text=chunk.text, boundary=chunk.boundary,
                             pause_before_ms=chunk.pause_before_ms, seed=seed, key=key,
                             source_line=turns[chunk.turn].source.line))
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
        words = spoken_words(job.text)
        fits = (current is not None and not options.exact_timings and current[-1].index == job.index - 1
                and current[-1].engine == job.engine and job.boundary != Boundary.SCENE
                and len({j.voice_id for j in current} | {job.voice_id}) <= 4
                and sum(spoken_words(j.text) for j in current) + words <= options.window_words)
        if fits:
            current.append(job)
        else:
            groups.append([job])
    updated = {job.index: job for job in jobs}
    windows = []
    for number, group in enumerate(groups):
        slots = tuple(dict.fromkeys(job.voice_id for job in group))
        lines = [[slots.index(job.voice_id), job.text] for job in group]
        seed = derive_seed(options.seed, content_hash(lines))
        key = content_hash({"lines": lines, "voices": [voices_by_id[v].cache_identity() for v in slots],
                            "engine": group[0].engine, "identities": [identities[v] for v in slots],
                            "seed": seed, "sample_rate": PROJECT_SAMPLE_RATE, "format": CHUNK_FORMAT_VERSION,
                            "alignment": ALIGNMENT_VERSION})
        words = sum(spoken_words(job.text) for job in group)
        windows.append(WindowJob(index=number, chunk_indexes=tuple(job.index for job in group),
                                 engine=group[0].engine, voice_ids=slots, seed=seed, key=key,
                                 estimated_seconds=max(1.0, words / WORDS_PER_SECOND)))
        for position, job in enumerate(group):
            updated[job.index] = replace(job, window=number, seed=seed,
                                         key=content_hash({"window": key, "line": position}))
    return [updated[job.index] for job in jobs], windows


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


def _warn_language(episode: Episode, voices: dict[str, VoiceProfile]) -> None:
    """One warning listing the lines whose text is in a script their (English) voice cannot read."""
    lines = [str(turn.source.line) for turn in episode.turns
             if voices[turn.speaker].language.startswith("en") and _CJK.search(turn.text)]
    if lines:
        shown = ", ".join(lines[:8]) + (f" and {len(lines) - 8} more" if len(lines) > 8 else "")
        warnings.warn(f"{episode.source_path}: lines {shown} contain CJK text an English voice cannot read; "
                      f"expect it to be skipped or garbled", stacklevel=2)


def episode_facts(plan: RenderPlan) -> EpisodeFacts:
    """The plan as episode QA reads it (QA sits below rendering and takes its own records)."""
    jobs = tuple(ChunkFacts(index=job.index, turn=job.turn, speaker=job.speaker, voice_id=job.voice_id,
                            engine=job.engine, text=job.text) for job in plan.jobs)
    return EpisodeFacts(plan.episode.meta.episode_id, plan.episode.meta.language, plan.preset, plan.options.qa, jobs)
