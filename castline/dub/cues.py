"""SubRip (.srt) and WebVTT (.vtt) cue files → one typed, repaired cue sheet.

Real-world files are messy. What is accepted, and how it is repaired (each repair is recorded on
the sheet as one line naming the file and line, and reported as a warning):

- UTF-8 with or without a BOM; CRLF, CR or LF line endings. Not UTF-8, UTF-16 or binary: an error
  naming the line (and byte).
- Missing blank lines between cues (the next cue's number or timing line starts a new cue) and
  extra blank lines anywhere; a blank line inside a cue's text joins the text.
- Markup: ``<i> <b> <u> <font …> <c.class> <ruby>`` tags, VTT timestamps inside text, ASS-style
  ``{\\an8}`` overrides and HTML entities are removed; VTT ``<v Name>`` gives the speaker.
- Speakers: an upper-case prefix (``ANA:``, ``DR. LUIS:``), ``[ANA]``/``(ANA)``, a ``<v>`` span, or
  any prefix naming a known speaker (``Ana:`` when the cast knows ``ana``).
- Dialogue cues: lines starting with ``-`` (or an en/em dash) are separate utterances, each with
  its own speaker; the planner splits the cue's slot between them.
- Sound descriptions for the hard of hearing (``[música]``, ``(risas)``, ``♪ … ♪``) are not
  spoken; a cue left with nothing to say is skipped.
- Timing: ``HH:MM:SS,mmm``, ``HH:MM:SS.mmm``, ``MM:SS.mmm`` (VTT), 1–3 fraction digits, extra
  text after the timing (SRT coordinates, VTT cue settings) ignored. A malformed timing line is an
  error naming the line.
- Timeline: cues out of order are sorted; cues starting together are merged into one dialogue
  cue; an overlapping cue's slot ends where the next cue starts; a cue with a zero or negative
  duration gets a slot from its text length (70 ms a character, at least 1 s), ending no later
  than the next cue's start. Cues past the end of the background are handled by the planner,
  which knows the background's length.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from castline.core.errors import DubError, ScriptError
from castline.script.textio import read_script_text

MS_PER_CHARACTER = 70
"""Slot estimate for a cue whose timing is unusable: about 14 characters a second."""
MIN_ESTIMATED_MS = 1000

_TS = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}(?:\s+.*)?$")
_TAG = re.compile(r"</?(?:i|b|u|s|font|c|ruby|rt|lang|span|v)(?:[\s.][^<>]*)?>|<\d{1,2}:\d{2}(?::\d{2})?[.,]\d{1,3}>",
                   re.IGNORECASE)
_ALMOST_TIMING = re.compile(r"^\s*[\d:,.]+\s*(?:->|—>|–>|=>|-{3,}>)\s*[\d:,.]+")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>", re.IGNORECASE)
_ASS = re.compile(r"\{\\[^{}]*\}")
_DESCRIPTION = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|♪[^♪]*♪?|#[^#]*#")
_DASH = re.compile(r"^\s*[-–—]\s*")
_CAPS_LABEL = re.compile(r"^([A-ZÁÉÍÓÚÜÑÀÈÌÒÙÂÊÎÔÛÄÖÇß][A-ZÁÉÍÓÚÜÑÀÈÌÒÙÂÊÎÔÛÄÖÇß0-9 .'’-]{0,31})\s*:\s*(.*)$")
_BRACKET_LABEL = re.compile(r"^[\[(]([A-ZÁÉÍÓÚÜÑÀÈÌÒÙÂÊÎÔÛÄÖÇß][\w .'’-]{0,31})[\])]\s*:?\s*(.+)$")
_ANY_LABEL = re.compile(r"^([^\W\d][\w .'’-]{0,31})\s*:\s*(.+)$")
_VTT_SKIP_BLOCKS = ("NOTE", "STYLE", "REGION")


@dataclass(frozen=True)
class Utterance:
    """One speaker's words inside a cue; ``speaker`` is ``None`` when the file does not say."""

    speaker: str | None
    text: str


@dataclass(frozen=True)
class Cue:
    """A cue's slot ``[start_ms, end_ms)`` (after repairs) and what is said in it.

    ``number``: 1-based position in the repaired sheet; ``source_id``: the identifier in the file
    (SRT counter or VTT id, may be empty); ``line``: the line of its timing in the file.
    """

    number: int
    source_id: str
    start_ms: int
    end_ms: int
    utterances: tuple[Utterance, ...]
    line: int

    @property
    def text(self) -> str:
        return " ".join(utterance.text for utterance in self.utterances)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class CueSheet:
    """A parsed cue file: ``format`` is "srt" or "vtt"; ``language`` from a VTT ``Language:`` header."""

    source_path: str
    format: str
    cues: tuple[Cue, ...]
    repairs: tuple[str, ...] = ()
    language: str | None = None

    def speakers(self) -> list[str | None]:
        """Distinct speakers in order of first appearance (``None``: cues with no speaker)."""
        seen: list[str | None] = []
        for cue in self.cues:
            for utterance in cue.utterances:
                if utterance.speaker not in seen:
                    seen.append(utterance.speaker)
        return seen


@dataclass
class _Raw:
    source_id: str
    start_ms: int
    end_ms: int
    line: int
    text_lines: list[tuple[int, str]]


def load_cue_sheet(path: str | os.PathLike[str], known_speakers: Iterable[str] = ()) -> CueSheet:
    """Read and parse ``path`` (.srt or .vtt, or either by content); errors name the file and line."""
    source = os.fspath(path)
    if not Path(source).is_file():
        raise DubError("cue file not found", source=source)
    try:
        text = read_script_text(source)
    except ScriptError as error:
        raise DubError(error.message.replace("a script", "a cue file"), source=error.source or source,
                       line=error.line) from error
    return parse_cue_text(text, source, known_speakers=known_speakers)


def parse_cue_text(text: str, source: str = "<cues>", known_speakers: Iterable[str] = ()) -> CueSheet:
    """Parse SRT or WebVTT ``text`` (LF line endings, no BOM) into a repaired ``CueSheet``."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first = next((line.strip() for line in lines if line.strip()), "")
    is_vtt = first.startswith("WEBVTT")
    repairs: list[str] = []
    if not is_vtt and Path(source).suffix.lower() == ".vtt" and first:
        repairs.append(_where(source, 1, "no WEBVTT header: read as WebVTT anyway"))
        is_vtt = True
    language, raws = _scan(lines, source, is_vtt, repairs)
    if not raws:
        raise DubError("no cues found (expected numbered cues with 'HH:MM:SS,mmm --> HH:MM:SS,mmm' timings)",
                       source=source)
    known = {speaker.casefold() for speaker in known_speakers}
    cues: list[Cue] = []
    for raw in raws:
        utterances = _utterances(raw, known, source, repairs)
        if not utterances:
            continue
        cues.append(Cue(number=0, source_id=raw.source_id, start_ms=raw.start_ms, end_ms=raw.end_ms,
                        utterances=tuple(utterances), line=raw.line))
    if not cues:
        raise DubError("no cue has any text to speak", source=source)
    cues = _repair_timeline(cues, source, repairs)
    return CueSheet(source_path=source, format="vtt" if is_vtt else "srt", language=language,
                    cues=tuple(replace(cue, number=number) for number, cue in enumerate(cues, start=1)),
                    repairs=tuple(repairs))


def _scan(lines: list[str], source: str, is_vtt: bool, repairs: list[str]) -> tuple[str | None, list[_Raw]]:
    """Anchor cues on their timing lines; everything between two timings is the first's text,
    less the second's identifier."""
    language = None
    timings = []
    for index, line in enumerate(lines):
        if "-->" not in line and _ALMOST_TIMING.match(line):
            raise DubError(f"bad cue timing {line.strip()[:60]!r} (expected HH:MM:SS,mmm --> HH:MM:SS,mmm)",
                           source=source, line=index + 1)
        if "-->" in line:
            match = _TIMING.match(line)
            if match is None:
                raise DubError(f"bad cue timing {line.strip()[:60]!r} (expected HH:MM:SS,mmm --> HH:MM:SS,mmm)",
                               source=source, line=index + 1)
            timings.append((index, match))
    if not timings:
        return None, []
    header_end = timings[0][0]
    preamble = [(number + 1, line.strip()) for number, line in enumerate(lines[:header_end])]
    if is_vtt:
        for _, line in preamble:
            if line.lower().startswith("language:"):
                language = line.split(":", 1)[1].strip() or None
    raws: list[_Raw] = []
    identifier = _identifier_before(lines, timings[0][0], is_vtt) if timings else ""
    for position, (index, match) in enumerate(timings):
        end_index = timings[position + 1][0] if position + 1 < len(timings) else len(lines)
        body = [(number + 1, lines[number].strip()) for number in range(index + 1, end_index)]
        following = ""
        if position + 1 < len(timings):
            body, following = _split_identifier(body, is_vtt)
        raws.append(_Raw(source_id=identifier, start_ms=_ms(match.groups()[:4], source, index + 1),
                         end_ms=_ms(match.groups()[4:], source, index + 1), line=index + 1,
                         text_lines=_cue_text(body, source, repairs, is_vtt)))
        identifier = following
    if not is_vtt:
        stray = [(number, line) for number, line in preamble[:-1] if line] + \
            [(number, line) for number, line in preamble[-1:] if line and not line.isdigit()]
        if stray:
            number, line = stray[0]
            raise DubError(f"text before the first cue timing: {line[:60]!r}", source=source, line=number)
    return language, raws


def _identifier_before(lines: list[str], index: int, is_vtt: bool) -> str:
    if index == 0:
        return ""
    candidate = lines[index - 1].strip()
    if not candidate or candidate.startswith("WEBVTT"):
        return ""
    return candidate if (candidate.isdigit() or is_vtt) else ""


def _split_identifier(body: list[tuple[int, str]], is_vtt: bool) -> tuple[list[tuple[int, str]], str]:
    """The last line before the next timing is that cue's identifier when it is a number (SRT),
    or, in VTT, when a blank line precedes it."""
    if not body or not body[-1][1]:
        return body, ""
    candidate = body[-1][1]
    blank_before = len(body) >= 2 and body[-2][1] == ""
    if candidate.isdigit() or (is_vtt and blank_before):
        return body[:-1], candidate
    return body, ""


def _cue_text(body: list[tuple[int, str]], source: str, repairs: list[str], is_vtt: bool) -> list[tuple[int, str]]:
    while body and not body[-1][1]:
        body = body[:-1]
    text: list[tuple[int, str]] = []
    skipping = False
    saw_blank = False
    for number, line in body:
        if not line:
            skipping = False
            saw_blank = bool(text)
            continue
        if skipping:
            continue
        if is_vtt and saw_blank and line.split(" ", 1)[0] in _VTT_SKIP_BLOCKS:
            skipping = True
            continue
        if saw_blank:
            repairs.append(_where(source, number, "text after a blank line inside a cue: joined to the cue"))
            saw_blank = False
        text.append((number, line))
    return text


def _ms(groups: tuple[str | None, ...], source: str, line: int) -> int:
    hours, minutes, seconds, fraction = groups
    hours_value, minutes_value, seconds_value = int(hours or 0), int(minutes), int(seconds)
    if minutes_value >= 60 or seconds_value >= 60:
        raise DubError(f"minutes and seconds must be under 60 in the timing "
                       f"'{hours or '00'}:{minutes}:{seconds}'", source=source, line=line)
    millis = int((fraction or "0").ljust(3, "0")[:3])
    return ((hours_value * 60 + minutes_value) * 60 + seconds_value) * 1000 + millis


def _utterances(raw: _Raw, known: set[str], source: str, repairs: list[str]) -> list[Utterance]:
    """Split a cue's lines into utterances (dialogue dashes) with speakers, markup removed."""
    # Each group is one utterance: its lines and the <v> voice in force for it. A dash starts a
    # new group, and so does a line opening with a different <v> span than the group's.
    groups: list[tuple[list[str], str | None]] = []
    voice: str | None = None
    dashed = any(_DASH.match(_strip_markup(line)[0]) for _, line in raw.text_lines)
    for _, line in raw.text_lines:
        clean, line_voice = _strip_markup(line)
        new_voice = line_voice is not None and groups and line_voice != groups[-1][1]
        voice = line_voice or voice
        if (dashed and _DASH.match(clean)) or new_voice or not groups:
            groups.append(([_DASH.sub("", clean, count=1) if dashed else clean], voice))
        else:
            groups[-1][0].append(clean)
    utterances: list[Utterance] = []
    for lines, group_voice in groups:
        text = " ".join(" ".join(lines).split())
        speaker, text = _speaker(text, known)
        spoken = " ".join(_DESCRIPTION.sub(" ", text).split()).strip(" -–—")
        if not spoken or not any(ch.isalnum() for ch in spoken):
            continue
        utterances.append(Utterance(speaker=speaker or group_voice, text=spoken))
    if not utterances:
        shown = " ".join(line for _, line in raw.text_lines)[:40]
        repairs.append(_where(source, raw.line, f"cue with nothing to speak ({shown!r}): skipped"))
    return utterances


def _strip_markup(line: str) -> tuple[str, str | None]:
    voice_match = _VOICE.search(line)
    voice = " ".join(voice_match.group(1).split()) if voice_match else None
    line = _VOICE.sub("", line)
    line = _ASS.sub("", _TAG.sub("", line))
    return html.unescape(line).replace("\u00a0", " ").replace("\u200e", "").replace("\u200f", "").strip(), voice


def _speaker(text: str, known: set[str]) -> tuple[str | None, str]:
    for pattern in (_CAPS_LABEL, _BRACKET_LABEL):
        match = pattern.match(text)
        if match and match.group(2).strip():
            label = " ".join(match.group(1).split())
            if pattern is _CAPS_LABEL and (label.isdigit() or len(label) == 1 and not known):
                continue
            return label, match.group(2).strip()
    match = _ANY_LABEL.match(text)
    if match and " ".join(match.group(1).split()).casefold() in known:
        return " ".join(match.group(1).split()), match.group(2).strip()
    return None, text


def _repair_timeline(cues: list[Cue], source: str, repairs: list[str]) -> list[Cue]:
    ordered = sorted(cues, key=lambda cue: cue.start_ms)
    if [cue.line for cue in ordered] != [cue.line for cue in cues]:
        repairs.append(_where(source, None, "cues are not in time order: sorted by start time"))
    merged: list[Cue] = []
    for cue in ordered:
        if merged and cue.start_ms == merged[-1].start_ms:
            previous = merged[-1]
            repairs.append(_where(source, cue.line, f"cue starts together with the cue at line {previous.line}: "
                                                    "merged into one dialogue cue"))
            merged[-1] = replace(previous, end_ms=max(previous.end_ms, cue.end_ms),
                                 utterances=previous.utterances + cue.utterances)
            continue
        merged.append(cue)
    repaired: list[Cue] = []
    for position, cue in enumerate(merged):
        next_start = merged[position + 1].start_ms if position + 1 < len(merged) else None
        start, end = cue.start_ms, cue.end_ms
        if end <= start:
            estimate = max(MIN_ESTIMATED_MS, MS_PER_CHARACTER * len(cue.text))
            end = start + estimate if next_start is None else min(start + estimate, next_start)
            repairs.append(_where(source, cue.line, f"cue ends {'at' if cue.end_ms == start else 'before'} its start "
                                                    f"({_clock(cue.start_ms)} --> {_clock(cue.end_ms)}): slot set to "
                                                    f"{end - start} ms from its text length"))
        elif next_start is not None and end > next_start:
            repairs.append(_where(source, cue.line, f"cue overlaps the next cue by {end - next_start} ms: "
                                                    f"its slot ends where the next starts ({_clock(next_start)})"))
            end = next_start
        repaired.append(replace(cue, start_ms=start, end_ms=end))
    return repaired


def _clock(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def _where(source: str, line: int | None, message: str) -> str:
    return f"{source}:{line}: {message}" if line is not None else f"{source}: {message}"
