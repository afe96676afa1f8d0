"""Parse a script, resolve its voices and engines, and plan chunk jobs keyed by content hash."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from castline import PROJECT_SAMPLE_RATE
from castline.engines.registry import engine_class, voice_usability
from castline.errors import VoiceError
from castline.hashing import content_hash, derive_seed
from castline.options import RenderOptions
from castline.planner import Boundary, plan_chunks
from castline.presets import PRESETS, Preset
from castline.script.load import load_script
from castline.script.model import Episode
from castline.voices import VoiceLibrary, VoiceProfile, default_voices_dir, load_voice_library

CHUNK_FORMAT_VERSION = "flac-pcm24-mono/resample-poly-kaiser8/v1"
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


@dataclass(frozen=True)
class RenderPlan:
    """Everything later stages need, as small references: no audio."""

    episode: Episode
    preset: Preset
    voices: tuple[VoiceProfile, ...]
    engines: tuple[tuple[str, str], ...]
    jobs: tuple[ChunkJob, ...]
    options: RenderOptions

    def voice(self, voice_id: str) -> VoiceProfile:
        return next(profile for profile in self.voices if profile.voice_id == voice_id)


def prepare_render(options: RenderOptions) -> RenderPlan:
    """Validate everything a render needs before any audio is made; errors are one line."""
    library = load_voice_library(options.voices_dir or default_voices_dir())
    usable = _usable_voice_ids(library, options.engine)
    episode = load_script(options.script, known_voices=usable + [v for v in library.ids() if v not in usable],
                          cast=dict(options.cast) or None, preset=options.preset, known_presets=list(PRESETS))
    voices = _resolve_voices(episode, library, options.engine)
    identities = {voice.voice_id: engine_class(_engine_for(voice, options.engine)).identity(voice)
                  for voice in voices.values()}
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
    return RenderPlan(episode=episode, preset=PRESETS[episode.meta.preset],
                      voices=tuple(sorted(voices.values(), key=lambda v: v.voice_id)), engines=engines,
                      jobs=tuple(jobs), options=options)


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
