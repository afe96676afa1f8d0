"""Load a script file of either format into a validated ``Episode``.

This is the edge where CLI overrides (cast, preset, title, language) meet the script and
where voice ids and presets are checked against what this installation knows.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from castline.core.errors import ScriptError, VoiceError
from castline.script.model import CastEntry, Episode, EpisodeMeta
from castline.script.plaintext_format import parse_plaintext
from castline.script.textio import read_script_text
from castline.script.yaml_format import Located, looks_like_yaml_script, parse_yaml

EPISODE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""Episode ids become storage path segments, so they are checked with ``is_valid_episode_id``."""

YAML_SUFFIXES = (".yaml", ".yml")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_DEFAULT_PRESET = next(f.default for f in fields(EpisodeMeta) if f.name == "preset")
_DEFAULT_LANGUAGE = next(f.default for f in fields(EpisodeMeta) if f.name == "language")
_MAX_LISTED = 20


def load_script(path: str | os.PathLike[str], *, known_voices: Sequence[str],
                cast: Mapping[str, str] | None = None, preset: str | None = None,
                known_presets: Collection[str], title: str | None = None,
                language: str | None = None, manuscript_options: object | None = None) -> Episode:
    """Read, parse and validate the script at ``path``.

    ``known_voices`` are voice profile ids, usable ones first: cast references must be among
    them and speakers without a voice get them in this order. ``cast`` (speaker -> voice),
    ``preset``, ``title`` and ``language`` override what the script says. Every user
    mistake raises a one-line ``ScriptError`` naming the file and line or option.
    """
    source = os.fspath(path)
    if Path(source).suffix.lower() in (".md", ".markdown", ".epub"):
        from castline.script.manuscript import load_manuscript  # imports this module

        return load_manuscript(source, known_voices=known_voices, cast=cast, preset=preset,
                               known_presets=known_presets, title=title, language=language,
                               options=manuscript_options)  # type: ignore[arg-type]
    text = read_script_text(source)
    if not text.strip():
        raise ScriptError("has no turns", source=source)
    voices = tuple(dict.fromkeys(known_voices))
    stem = Path(source).stem
    overrides = dict(cast or {})

    if detect_format(source, text) == "yaml":
        script = parse_yaml(text, source)
        used = {turn.speaker for turn in script.turns}
        seats = [CastSeat(d.speaker, d.display_name, d.voice, d.speaker in used)
                 for d in script.cast]
        meta = EpisodeMeta(
            episode_id=_episode_id(script.episode_id, stem, source),
            title=_title(title, script.title, stem, source),
            language=_language(language, script.language, source),
            preset=_preset(preset, script.preset, known_presets, source),
            lexicons=tuple(str(Path(source).parent / item.value) for item in script.lexicons),
        )
        turns, chapters, warnings, fmt = script.turns, script.chapters, script.warnings, "yaml"
    else:
        plain = parse_plaintext(text, source)
        seats = [CastSeat(s, f"Speaker {s}", None, True) for s in plain.speakers]
        meta = EpisodeMeta(
            episode_id=_episode_id(None, stem, source),
            title=_title(title, None, stem, source),
            language=_language(language, None, source),
            preset=_preset(preset, None, known_presets, source),
        )
        turns, chapters, warnings, fmt = plain.turns, (), (), "plaintext"

    entries, share_warning = assign_cast(seats, overrides, voices, source)
    if share_warning:
        warnings = (*warnings, share_warning)
    return Episode(meta=meta, cast=entries, turns=turns, chapters=chapters,
                   source_path=source, source_format=fmt, warnings=tuple(warnings))


def detect_format(path: str | os.PathLike[str], text: str) -> str:
    """"yaml" for .yaml/.yml, "plaintext" for .txt; other names are sniffed from ``text``."""
    suffix = Path(path).suffix.lower()
    if suffix in YAML_SUFFIXES:
        return "yaml"
    if suffix == ".txt":
        return "plaintext"
    return "yaml" if looks_like_yaml_script(text) else "plaintext"


def is_valid_episode_id(value: str) -> bool:
    """True if ``value`` is safe as one storage path segment: no '/', no '..', no leading '.'."""
    return bool(EPISODE_ID_PATTERN.fullmatch(value)) and ".." not in value


def slugify_episode_id(name: str) -> str:
    """A valid episode id made from a file stem: lowercase, other runs of characters -> '-'."""
    # Accents are dropped rather than replaced: "Épisode" -> "episode".
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    slug = re.sub(r"[^a-z0-9._-]+", "-", plain.lower())
    slug = re.sub(r"\.{2,}", ".", slug)
    slug = slug.lstrip("._-")[:100].rstrip("._-")
    return slug or "episode"


@dataclass(frozen=True)
class CastSeat:
    """A speaker the script declares; ``voice`` is the script's own choice, if any."""

    speaker: str
    display_name: str
    voice: Located | None
    used: bool


def assign_cast(seats: Sequence[CastSeat], overrides: Mapping[str, str], voices: Sequence[str],
                source: str) -> tuple[tuple[CastEntry, ...], str | None]:
    """Cast entries for the used seats, and one warning if auto-assignment made voices shared.

    Precedence: ``overrides`` (CLI), then the script's voice, then ``voices`` in order,
    distinct while unused ones last, then wrapping around.
    """
    by_speaker = {seat.speaker: seat for seat in seats}
    chosen: dict[str, str] = {}
    for key, voice in overrides.items():
        speaker = _match_speaker(str(key), by_speaker)
        if speaker is None:
            raise ScriptError(f"speaker '{key}' is not in the script (speakers: "
                              f"{_listing(by_speaker)})", source=source, field="--cast")
        if voice not in voices:
            raise ScriptError(f"unknown voice '{voice}' for speaker '{speaker}' "
                              f"({_known_voices(voices)})", source=source, field="--cast")
        chosen[speaker] = voice
    for seat in seats:
        if seat.speaker in chosen or seat.voice is None:
            continue
        if seat.voice.value not in voices:
            raise ScriptError(f"unknown voice '{seat.voice.value}' ({_known_voices(voices)})",
                              source=source, line=seat.voice.line, field=seat.voice.field)
        chosen[seat.speaker] = seat.voice.value

    used = [seat for seat in seats if seat.used]
    automatic = [seat.speaker for seat in used if seat.speaker not in chosen]
    if automatic and not voices:
        raise VoiceError(f"no voice profiles are available for speakers "
                         f"{', '.join(automatic)}", source=source)
    taken = {chosen[seat.speaker] for seat in used if seat.speaker in chosen}
    free = [voice for voice in voices if voice not in taken]
    for number, speaker in enumerate(automatic):
        chosen[speaker] = free[number] if number < len(free) else \
            voices[(number - len(free)) % len(voices)]

    entries = tuple(CastEntry(seat.speaker, chosen[seat.speaker], seat.display_name)
                    for seat in used)
    return entries, _share_warning(entries, set(automatic), source)


def _share_warning(entries: Sequence[CastEntry], automatic: set[str], source: str) -> str | None:
    groups: dict[str, list[str]] = {}
    for entry in entries:
        groups.setdefault(entry.voice, []).append(entry.speaker)
    clashes = [f"speakers {_and_list(speakers)} share voice '{voice}'"
               for voice, speakers in groups.items()
               if len(speakers) > 1 and automatic.intersection(speakers)]
    if not clashes:
        return None
    return f"{source}: {'; '.join(clashes)} (pass --cast to choose)"


def _match_speaker(key: str, by_speaker: Mapping[str, CastSeat]) -> str | None:
    key = key.strip()
    if key in by_speaker:
        return key
    # "--cast 01=joe" or "--cast 'Speaker 1'=joe" for a plain-text script's speaker "1".
    digits = re.fullmatch(r"(?:speaker\s*)?(\d{1,6})", key, re.IGNORECASE)
    if digits and str(int(digits.group(1))) in by_speaker:
        return str(int(digits.group(1)))
    return None


def _episode_id(declared: Located | None, stem: str, source: str) -> str:
    if declared is None:
        return slugify_episode_id(stem)
    if not is_valid_episode_id(declared.value):
        raise ScriptError(f"'{declared.value}' is not a valid episode id: use 1-100 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit, no '..'",
                          source=source, line=declared.line, field=declared.field)
    return declared.value


def _title(override: str | None, declared: str | None, stem: str, source: str) -> str:
    if override is not None:
        title = " ".join(override.split())
        if not title:
            raise ScriptError("is empty", source=source, field="--title")
        return title
    return declared or stem


def _language(override: str | None, declared: Located | None, source: str) -> str:
    if override is not None:
        if not _LANGUAGE.fullmatch(override):
            raise ScriptError(f"'{override}' is not a language code like 'en' or 'zh-CN'",
                              source=source, field="--language")
        return override
    if declared is not None:
        if not _LANGUAGE.fullmatch(declared.value):
            raise ScriptError(f"'{declared.value}' is not a language code like 'en' or 'zh-CN'",
                              source=source, line=declared.line, field=declared.field)
        return declared.value
    return _DEFAULT_LANGUAGE


def _preset(override: str | None, declared: Located | None, known: Collection[str],
            source: str) -> str:
    choices = ", ".join(sorted(known)) or "none"
    if override is not None:
        if override not in known:
            raise ScriptError(f"unknown preset '{override}' (known presets: {choices})",
                              source=source, field="--preset")
        return override
    if declared is not None:
        if declared.value not in known:
            raise ScriptError(f"unknown preset '{declared.value}' (known presets: {choices})",
                              source=source, line=declared.line, field=declared.field)
        return declared.value
    if _DEFAULT_PRESET not in known:
        raise ScriptError(f"no preset chosen and the default '{_DEFAULT_PRESET}' is not known "
                          f"(known presets: {choices}); pass --preset", source=source)
    return _DEFAULT_PRESET


def _and_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _listing(items: Collection[str]) -> str:
    names = list(items)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _known_voices(voices: Sequence[str]) -> str:
    return f"known voices: {_listing(voices)}" if voices else "no voices are known"
