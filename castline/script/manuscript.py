"""Load a Markdown or EPUB manuscript into the same validated ``Episode`` as a YAML script."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from castline.script.load import CastSeat, _episode_id, _language, _preset, _title, assign_cast
from castline.script.manuscript_epub import parse_epub
from castline.script.manuscript_markdown import Manuscript, ManuscriptOptions, parse_markdown
from castline.script.model import Episode, EpisodeMeta
from castline.script.textio import read_script_text
from castline.script.yaml_format import Located

MARKDOWN_SUFFIXES = (".md", ".markdown")
EPUB_SUFFIXES = (".epub",)


def is_manuscript(path: str | os.PathLike[str]) -> bool:
    return Path(os.fspath(path)).suffix.lower() in MARKDOWN_SUFFIXES + EPUB_SUFFIXES


def parse_manuscript(path: str | os.PathLike[str], options: ManuscriptOptions | None = None) -> Manuscript:
    source = os.fspath(path)
    if Path(source).suffix.lower() in EPUB_SUFFIXES:
        return parse_epub(source, options)
    return parse_markdown(read_script_text(source), source, options)


def load_manuscript(path: str | os.PathLike[str], *, known_voices: Sequence[str],
                    cast: Mapping[str, str] | None = None, preset: str | None = None,
                    known_presets: Collection[str], title: str | None = None, language: str | None = None,
                    options: ManuscriptOptions | None = None) -> Episode:
    """Parse and validate a manuscript: the narrator and characters get voices as a YAML
    script's speakers do (``cast`` from the command line first, then the front matter)."""
    source = os.fspath(path)
    book = parse_manuscript(source, options)
    stem = Path(source).stem
    declared = {key.casefold(): (key, voice) for key, voice in book.cast}
    used = list(dict.fromkeys(turn.speaker for turn in book.turns))
    if declared:
        unknown = [speaker for speaker in used if speaker.casefold() not in declared]
        if unknown:
            turn = next(t for t in book.turns if t.speaker == unknown[0])
            from castline.core.errors import ScriptError

            raise ScriptError(f"speaker '{unknown[0]}' is not in the front matter cast "
                              f"({', '.join(key for key, _ in book.cast)})", source=turn.source.path,
                              line=turn.source.line)
    seats = []
    for speaker in used:
        voice = declared.get(speaker.casefold(), (speaker, None))[1]
        seats.append(CastSeat(speaker, speaker, Located(voice, 1, f"cast.{speaker}") if voice else None, True))
    meta = EpisodeMeta(
        episode_id=_episode_id(Located(book.episode_id, 1, "id") if book.episode_id else None, stem, source),
        title=_title(title, book.title, stem, source),
        language=_language(language, Located(book.language, 1, "language") if book.language else None, source),
        preset=_preset(preset, Located(book.preset, 1, "preset") if book.preset else None, known_presets, source),
    )
    if book.lexicons:
        folder = Path(source).parent
        meta = replace(meta, lexicons=tuple(str(folder / item) for item in book.lexicons))
    entries, share_warning = assign_cast(seats, dict(cast or {}), tuple(dict.fromkeys(known_voices)), source)
    warnings = book.warnings + ((share_warning,) if share_warning else ())
    return Episode(meta=meta, cast=entries, turns=book.turns, chapters=book.chapters, source_path=source,
                   source_format="epub" if Path(source).suffix.lower() in EPUB_SUFFIXES else "markdown",
                   warnings=warnings)
