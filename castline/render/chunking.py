"""Plan an episode into TTS chunks: sentences of one turn packed up to a character budget.

Lengths are in characters (Python code points). Every chunk is an exact slice of its turn's
text with no surrounding whitespace, so offsets map straight back to the script.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from castline.script.lexicon import Rewrite
from castline.script.model import Episode, Turn

_CLOSERS = "\"'”’)]»」』）】"
_OPENERS = "\"'“‘([«「『（【"
_TERMINATOR = re.compile(rf"(?:(?P<cjk>[。！？]+)|[.!?…]+)[{re.escape(_CLOSERS)}]*")
_CLAUSE = frozenset(",;:—–，、；：")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "jr", "sr"})
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]|[A-Z]")
_ABBREVIATION_WINDOW = 16
_MIN_CLAUSE_FRACTION = 3
"""A clause cut leaving under 1/3 of the budget loses to a space cut (no tiny chunks)."""


class Boundary(str, Enum):
    """How a chunk joins the previous one."""

    START = "start"
    SPLIT = "split"
    SENTENCE = "sentence"
    TURN = "turn"
    SCENE = "scene"


@dataclass(frozen=True)
class Chunk:
    """One TTS request: ``text == turn.text[char_start:char_end]`` of turn ``turn``.

    ``pause_before_ms`` is the turn's explicit pause (ms), set on its first chunk only.
    ``spoken_text`` is what the engine is sent (the text after lexicons and normalisation;
    equal to ``text`` when nothing was rewritten), ``reference_text`` what a listener should
    hear (phoneme markup read as its word, for QA), ``lexicon_rules`` the rules that fired.
    """

    index: int
    turn: int
    position: int
    speaker: str
    text: str
    char_start: int
    char_end: int
    boundary: Boundary
    pause_before_ms: int | None
    spoken_text: str = ""
    reference_text: str = ""
    lexicon_rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.spoken_text:
            object.__setattr__(self, "spoken_text", self.text)
        if not self.reference_text:
            object.__setattr__(self, "reference_text", self.spoken_text)


def plan_chunks(episode: Episode, *, max_chars: int, target_chars: int | None = None,
                spoken: Callable[[Turn], Rewrite] | None = None) -> tuple[Chunk, ...]:
    """Split every turn into chunks of at most ``max_chars`` characters.

    Whole sentences are packed greedily up to ``target_chars`` (default ``max_chars``);
    only a sentence longer than ``max_chars`` is cut inside. Chunks never span turns.
    With ``spoken`` (a turn's rewrite by lexicons and normalisation), the spoken text is what
    is split and measured, and each chunk maps back to the written text it came from.
    """
    target = max_chars if target_chars is None else target_chars
    if max_chars < 1 or not 1 <= target <= max_chars:
        raise ValueError(f"need 1 <= target_chars <= max_chars, got {target_chars} and {max_chars}")
    chunks: list[Chunk] = []
    for turn in episode.turns:
        rewrite = spoken(turn) if spoken is not None else None
        if rewrite is not None and (not rewrite.edits or not rewrite.spoken.strip()):
            rewrite = None  # nothing rewritten, or rules that delete every word: read it as written
        pieces = _pack(rewrite.spoken if rewrite else turn.text, max_chars, target)
        for position, (start, end, joined_by) in enumerate(pieces):
            if position == 0:
                boundary = (Boundary.START if not chunks else
                            Boundary.SCENE if turn.scene_break_before else Boundary.TURN)
            else:
                boundary = joined_by
            extra = {}
            if rewrite is not None:
                extra = _spoken_fields(rewrite, start, end)
                start, end = extra.pop("span")
            chunks.append(Chunk(
                index=len(chunks), turn=turn.index, position=position, speaker=turn.speaker,
                text=turn.text[start:end], char_start=start, char_end=end, boundary=boundary,
                pause_before_ms=turn.pause_before_ms if position == 0 else None, **extra))
    return tuple(chunks)


def _spoken_fields(rewrite: Rewrite, start: int, end: int) -> dict:
    """Written span (trimmed), spoken and reference text, and fired rules of a spoken slice."""
    written_start, written_end = rewrite.written_span(start, end)
    text = rewrite.written
    while written_start < written_end and text[written_start].isspace():
        written_start += 1
    while written_end > written_start and text[written_end - 1].isspace():
        written_end -= 1
    spoken = rewrite.spoken[start:end]
    reference, rules, cursor = [], [], start
    for out_start, out_end, edit in rewrite.spoken_offsets():
        if out_end <= start or out_start >= end:
            continue
        if edit.kind == "lexicon":
            rules.append(edit.rule)
        if start <= out_start and out_end <= end:
            reference += [rewrite.spoken[cursor:out_start], edit.reference]
            cursor = out_end
    reference.append(rewrite.spoken[cursor:end])
    return {"span": (written_start, written_end), "spoken_text": spoken, "reference_text": "".join(reference),
            "lexicon_rules": tuple(dict.fromkeys(rules))}


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of ``text``, without surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _TERMINATOR.finditer(text):
        end = match.end()
        if match.group("cjk") is None and not _ends_sentence(text, match.start(), end):
            continue
        _add_trimmed(text, start, end, spans)
        start = end
    _add_trimmed(text, start, len(text), spans)
    return spans


def _ends_sentence(text: str, start: int, end: int) -> bool:
    """Whether a Western terminator at text[start:end] ends a sentence."""
    if end < len(text) and not text[end].isspace():
        # "3.5" and "end.Next" stay whole; CJK needs no space after "!", "?" or "…".
        return _is_cjk(text[end]) and text[start:end].rstrip(_CLOSERS).strip(".") != ""
    following = end
    while following < len(text) and text[following].isspace():
        following += 1
    if following == len(text):
        return True
    if text[following].islower():
        return False
    if text[start:end].rstrip(_CLOSERS) == ".":
        word = text[max(0, start - _ABBREVIATION_WINDOW):start].rsplit(None, 1)
        token = word[-1].lstrip(_OPENERS) if word and not text[start - 1].isspace() else ""
        if token.lower() in _ABBREVIATIONS or _DOTTED.fullmatch(token):
            return False
    return True


def _is_cjk(char: str) -> bool:
    return ("\u3000" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af"
            or "\uf900" <= char <= "\ufaff" or "\uff00" <= char <= "\uffef")


def _add_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _pack(text: str, max_chars: int, target: int) -> list[tuple[int, int, Boundary]]:
    """Chunk spans of one turn with how each joins the previous one."""
    units: list[tuple[int, int, Boundary]] = []
    for start, end in split_sentences(text):
        if end - start <= max_chars:
            units.append((start, end, Boundary.SENTENCE))
        else:
            pieces = _split_long(text, start, end, max_chars)
            units.append((*pieces[0], Boundary.SENTENCE))
            units.extend((*piece, Boundary.SPLIT) for piece in pieces[1:])
    packed: list[tuple[int, int, Boundary]] = []
    for start, end, joined_by in units:
        if packed and end - packed[-1][0] <= target:
            packed[-1] = (packed[-1][0], end, packed[-1][2])
        else:
            packed.append((start, end, joined_by))
    return packed


def _split_long(text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Cut text[start:end] (no surrounding whitespace) into pieces of at most ``budget``."""
    pieces: list[tuple[int, int]] = []
    while end - start > budget:
        cut = _cut_point(text, start, start + budget)
        piece_end = cut
        while text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append((start, piece_end))
        start = cut
        while text[start].isspace():
            start += 1
    pieces.append((start, end))
    return pieces


def _cut_point(text: str, start: int, limit: int) -> int:
    """Where to cut so text[start:cut] fits in ``limit - start`` characters (start < cut <= limit).

    Prefers just after clause punctuation (with its closing quotes) unless that leaves a
    piece under a third of the budget, then the last space, then any clause punctuation,
    then a character boundary that keeps combining marks and joined emoji together.
    """
    clause = _clause_cut(text, start, limit)
    if clause is not None and clause - start >= max(1, (limit - start) // _MIN_CLAUSE_FRACTION):
        return clause
    for position in range(limit, start, -1):
        if text[position].isspace():
            return position
    if clause is not None:
        return clause
    cut = limit
    while cut > start + 1 and not _is_grapheme_break(text, cut):
        cut -= 1
    return cut if _is_grapheme_break(text, cut) else limit


def _clause_cut(text: str, start: int, limit: int) -> int | None:
    for position in range(limit - 1, start - 1, -1):
        if text[position] in _CLAUSE:
            cut = position + 1
            while cut < limit and text[cut] in _CLOSERS:
                cut += 1
            return cut
    return None


def _is_grapheme_break(text: str, index: int) -> bool:
    """Approximately: may text be cut before ``text[index]`` without splitting a character."""
    char = text[index]
    return not (unicodedata.combining(char) or char in "\u200d\ufe0e\ufe0f"
                or "\U0001f3fb" <= char <= "\U0001f3ff" or "\udc00" <= char <= "\udfff"
                or text[index - 1] == "\u200d")
