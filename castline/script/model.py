"""The one typed model of an episode script, whatever format it was written in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceRef:
    """Where something came from, for error messages: file and 1-based line."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(frozen=True)
class EpisodeMeta:
    """Episode-level settings.

    ``episode_id`` is safe to use as a storage path segment (``[A-Za-z0-9][A-Za-z0-9._-]*``).
    ``preset`` names a delivery preset (see ``castline.dsp.presets``).
    """

    episode_id: str
    title: str
    language: str = "en"
    preset: str = "podcast"
    lexicons: tuple[str, ...] = ()
    """Pronunciation lexicon files the script names (``episode.lexicons``), in order."""


@dataclass(frozen=True)
class CastEntry:
    """One speaker and the voice profile id that speaks for them."""

    speaker: str
    voice: str
    display_name: str


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted text.

    ``pause_before_ms`` overrides the gap before this turn; ``scene_break_before`` marks a
    scene/paragraph break before it (a longer gap). ``source`` points at the script line.
    """

    index: int
    speaker: str
    text: str
    source: SourceRef
    pause_before_ms: int | None = None
    scene_break_before: bool = False


@dataclass(frozen=True)
class Chapter:
    """A chapter starting at turn ``first_turn`` (0-based turn index); ``url`` and ``image`` are
    optional http(s) links for players (``chapters.json``)."""

    title: str
    first_turn: int
    url: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class Episode:
    """A parsed, validated script: metadata, cast, ordered turns and optional chapters."""

    meta: EpisodeMeta
    cast: tuple[CastEntry, ...]
    turns: tuple[Turn, ...]
    chapters: tuple[Chapter, ...] = ()
    source_path: str = ""
    source_format: str = ""
    warnings: tuple[str, ...] = field(default=())

    def voice_for(self, speaker: str) -> str:
        for entry in self.cast:
            if entry.speaker == speaker:
                return entry.voice
        raise KeyError(speaker)

    def display_name(self, speaker: str) -> str:
        for entry in self.cast:
            if entry.speaker == speaker:
                return entry.display_name
        return speaker
