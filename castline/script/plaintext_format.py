"""Parse VibeVoice-style plain-text scripts (``Speaker 1: text``) into turns."""

from __future__ import annotations

import re
from dataclasses import dataclass

from castline.core.errors import ScriptError
from castline.script.model import SourceRef, Turn

# A full-width colon is accepted because CJK keyboards produce it.
_PREFIX = re.compile(r"^\s*speaker\s*(\d{1,6})\s*[:：]\s*(.*)$", re.IGNORECASE)
# Control characters that are not whitespace would be sent to the TTS engine verbatim.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


@dataclass(frozen=True)
class PlainScript:
    """Turns of a plain-text script and its speaker ids ("1", "2", ...) in numeric order."""

    turns: tuple[Turn, ...]
    speakers: tuple[str, ...]


def parse_plaintext(text: str, source: str) -> PlainScript:
    """Parse LF-separated plain text.

    With ``Speaker N:`` prefixes, each prefixed line starts a turn and unprefixed non-blank
    lines continue it. Without any prefix the whole file is speaker "1", one turn per
    blank-line-separated paragraph. Raises ``ScriptError`` naming ``source`` and the line.
    """
    control = _CONTROL.search(text)
    if control:
        raise ScriptError(f"contains control character U+{ord(control.group()):04X}",
                          source=source, line=text.count("\n", 0, control.start()) + 1)
    lines = text.split("\n")
    if not any(_PREFIX.match(line) for line in lines):
        return _parse_single_speaker(lines, source)
    return _parse_prefixed(lines, source)


def _parse_prefixed(lines: list[str], source: str) -> PlainScript:
    drafts: list[tuple[str, int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        match = _PREFIX.match(line)
        if match:
            drafts.append((str(int(match.group(1))), number, [match.group(2)]))
        elif line.strip():
            if not drafts:
                raise ScriptError(
                    "has text before the first 'Speaker N:' line; start each turn with "
                    "'Speaker N:'", source=source, line=number)
            drafts[-1][2].append(line)
    turns = []
    for speaker, number, parts in drafts:
        body = " ".join(" ".join(parts).split())
        if not body:
            raise ScriptError(f"Speaker {speaker} has no text", source=source, line=number)
        turns.append(Turn(index=len(turns), speaker=speaker, text=body,
                          source=SourceRef(source, number)))
    speakers = tuple(sorted({turn.speaker for turn in turns}, key=int))
    return PlainScript(turns=tuple(turns), speakers=speakers)


def _parse_single_speaker(lines: list[str], source: str) -> PlainScript:
    turns: list[Turn] = []
    paragraph: list[str] = []
    first_line = 0
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            if not paragraph:
                first_line = number
            paragraph.append(line)
        elif paragraph:
            body = " ".join(" ".join(paragraph).split())
            turns.append(Turn(index=len(turns), speaker="1", text=body,
                              source=SourceRef(source, first_line)))
            paragraph = []
    if not turns:
        raise ScriptError("has no turns", source=source)
    return PlainScript(turns=tuple(turns), speakers=("1",))
