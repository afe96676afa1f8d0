"""Markdown manuscripts: headings → chapters, paragraphs → narrator turns, quotes → characters.

    ---                      optional YAML front matter: title, id, language, preset, narrator,
    title: The Long Road     cast (speaker → voice), dialogue_pattern, lexicons
    cast: {narrator: heart, Mara: joe}
    ---
    # Chapter One
    It was late.             a paragraph: one narrator turn
    > Mara: We should go.    a quote: a turn for the character named before the colon
    ---                      a thematic break: a scene break before the next turn

The top heading level in use marks chapters (a lone level-1 heading above level-2 headings is
the book title); deeper headings are read by the narrator after a scene break. Code blocks,
HTML and tables are not read (each gives a warning with its line). Parsed with markdown-it-py
(CommonMark), whose tokens carry line numbers for error messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from castline.core.errors import ScriptError
from castline.script.model import Chapter, SourceRef, Turn
from castline.script.yaml_format import compose_yaml

DEFAULT_NARRATOR = "narrator"
QUOTE_SPEAKER = re.compile(r"^\s*(?:\*\*|__)?(?P<speaker>[^\W\d_][\w .'\-]{0,39}?)(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*"
                           r"(?P<text>\S.*)$", re.DOTALL)
"""A quote's speaker: ``> Mara: text`` or ``> **Mara:** text``."""
FRONT_MATTER_KEYS = ("title", "id", "language", "preset", "narrator", "cast", "dialogue_pattern", "lexicons")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_MARKUP = re.compile(r"(?:\*\*|__)")


@dataclass(frozen=True)
class ManuscriptOptions:
    """How a manuscript becomes turns.

    ``narrator``: the speaker of plain paragraphs. ``dialogue_pattern``: a regular expression
    with ``speaker`` and ``text`` groups, tried on every paragraph (Markdown quotes always use
    ``QUOTE_SPEAKER``). ``include_front_matter``: EPUB cover, title and copyright pages are
    skipped unless this is set. ``speak_headings``: chapter titles are read aloud.
    """

    narrator: str | None = None
    dialogue_pattern: str | None = None
    include_front_matter: bool = False
    speak_headings: bool = True


@dataclass(frozen=True)
class Manuscript:
    """What a manuscript says, before voices are checked (like ``YamlScript``)."""

    title: str | None
    episode_id: str | None
    language: str | None
    preset: str | None
    narrator: str
    cast: tuple[tuple[str, str | None], ...]
    turns: tuple[Turn, ...]
    chapters: tuple[Chapter, ...]
    lexicons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def compile_dialogue(pattern: str | None, source: str, where: str = "dialogue_pattern",
                     line: int | None = None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise ScriptError(f"not a valid regular expression: {exc}", source=source, line=line, field=where) from exc
    if not {"speaker", "text"} <= set(compiled.groupindex):
        raise ScriptError("needs named groups (?P<speaker>...) and (?P<text>...)", source=source, line=line,
                          field=where)
    return compiled


class TurnBuilder:
    """Collects turns and chapters for both manuscript formats."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.turns: list[Turn] = []
        self.chapters: list[Chapter] = []
        self.warnings: list[str] = []
        self.scene_pending = False
        self.chapter_pending: str | None = None
        self.speakers: dict[str, str] = {}

    def add(self, speaker: str, text: str, ref: SourceRef, where: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        control = _CONTROL.search(text)
        if control:
            raise ScriptError(f"contains control character U+{ord(control.group()):04X}", source=ref.path,
                              line=ref.line, field=where)
        key = speaker.casefold()
        speaker = self.speakers.setdefault(key, " ".join(speaker.split()))
        if self.chapter_pending is not None:
            self.chapters.append(Chapter(self.chapter_pending, len(self.turns)))
            self.chapter_pending = None
        self.turns.append(Turn(index=len(self.turns), speaker=speaker, text=text, source=ref,
                               scene_break_before=self.scene_pending and bool(self.turns)))
        self.scene_pending = False

    def chapter(self, title: str, ref: SourceRef) -> None:
        if self.chapter_pending is not None:
            self.warnings.append(f"{ref.path}:{ref.line}: chapter '{self.chapter_pending}' has no text; ignored")
        self.chapter_pending = title


def split_dialogue(text: str, pattern: re.Pattern | None) -> tuple[str, str] | None:
    if pattern is None:
        return None
    match = pattern.match(text)
    if match is None or not match.group("speaker") or not match.group("text"):
        return None
    return match.group("speaker").strip(), match.group("text").strip()


def parse_markdown(text: str, source: str, options: ManuscriptOptions | None = None) -> Manuscript:
    """Parse a Markdown manuscript; errors name ``source`` and the line."""
    from markdown_it import MarkdownIt

    options = options or ManuscriptOptions()
    front, body_offset, body = _front_matter(text, source)
    narrator = options.narrator or front.get("narrator") or DEFAULT_NARRATOR
    pattern_text = options.dialogue_pattern if options.dialogue_pattern is not None else front.get("dialogue_pattern")
    dialogue = compile_dialogue(pattern_text, source, line=front.get("_lines", {}).get("dialogue_pattern"))
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    levels = [int(tok.tag[1]) for tok in tokens if tok.type == "heading_open"]
    chapter_level = min(levels) if levels else None
    title = front.get("title")
    if levels and levels.count(chapter_level) == 1 and any(level > chapter_level for level in levels):
        # One top heading over deeper ones is the book's title, not a chapter.
        first = next(i for i, tok in enumerate(tokens) if tok.type == "heading_open")
        if all(tok.type != "paragraph_open" for tok in tokens[:first]):
            title = title or _inline_text(tokens[first + 1])
            tokens = tokens[:first] + tokens[first + 3:]
            levels.remove(chapter_level)
            chapter_level = min(levels)
    builder = TurnBuilder(source)
    headings: set[str] = set()
    quote_depth = 0
    for index, tok in enumerate(tokens):
        line = body_offset + (tok.map[0] + 1 if tok.map else 0)
        ref = SourceRef(source, line)
        if tok.type == "blockquote_open":
            quote_depth += 1
        elif tok.type == "blockquote_close":
            quote_depth -= 1
        elif tok.type == "hr":
            builder.scene_pending = True
        elif tok.type == "heading_open":
            heading = _inline_text(tokens[index + 1])
            headings.add(" ".join(heading.split()))
            if int(tok.tag[1]) == chapter_level:
                builder.chapter(heading, ref)
                if options.speak_headings:
                    builder.add(narrator, heading, ref, "heading")
            else:
                builder.scene_pending = True
                builder.add(narrator, heading, ref, "heading")
        elif tok.type == "paragraph_open":
            paragraph = _inline_text(tokens[index + 1])
            if quote_depth:
                found = split_dialogue(paragraph, QUOTE_SPEAKER)
                if found is None:
                    raise ScriptError("a quote needs its speaker first, like '> Mara: text'", source=source,
                                      line=line, field="quote")
                builder.add(found[0], _MARKUP.sub("", found[1]), ref, "quote")
            else:
                found = split_dialogue(paragraph, dialogue)
                speaker, spoken = found if found else (narrator, paragraph)
                builder.add(speaker, spoken, ref, "paragraph")
        elif tok.type in ("fence", "code_block", "html_block", "table_open"):
            kind = {"fence": "code block", "code_block": "code block", "html_block": "HTML",
                    "table_open": "table"}[tok.type]
            builder.warnings.append(f"{source}:{line}: {kind} is not read aloud")
    if all(turn.text in headings for turn in builder.turns):
        raise ScriptError("has no paragraphs to read", source=source)
    if builder.chapter_pending is not None:
        builder.warnings.append(f"{source}: chapter '{builder.chapter_pending}' at the end has no text; ignored")
    return Manuscript(title=title, episode_id=front.get("id"), language=front.get("language"),
                      preset=front.get("preset"), narrator=narrator, cast=tuple(front.get("cast", {}).items()),
                      turns=tuple(builder.turns), chapters=tuple(builder.chapters),
                      lexicons=tuple(front.get("lexicons", ())), warnings=tuple(builder.warnings))


def _inline_text(tok) -> str:
    parts = []
    for child in tok.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline":
            continue
    text = "".join(parts) if tok.children is not None else tok.content
    return " ".join(text.split())


def _front_matter(text: str, source: str) -> tuple[dict, int, str]:
    """(fields, lines before the body, body). Fields keep the line of each key in ``_lines``."""
    if not text.startswith("---\n"):
        return {}, 0, text
    end = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if end is None:
        raise ScriptError("front matter starting with '---' is never closed", source=source, line=1)
    block = text[4:4 + end.start()]
    body = text[4 + end.end():]
    offset = text[:4 + end.end()].count("\n")
    root = compose_yaml(block, source, first_line=2, what="invalid front matter")
    if root is None:
        return {}, offset, body
    if not isinstance(root, yaml.MappingNode):
        raise ScriptError("front matter must be a mapping of keys", source=source, line=2)
    fields: dict = {"_lines": {}}
    for key_node, value in root.value:
        key = key_node.value
        line = key_node.start_mark.line + 2
        if key not in FRONT_MATTER_KEYS:
            raise ScriptError(f"unknown front matter key '{key}'; allowed: {', '.join(FRONT_MATTER_KEYS)}",
                              source=source, line=line, field=key)
        fields["_lines"][key] = line
        data = yaml.load(yaml.serialize(value), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if key == "cast":
            if not isinstance(data, dict):
                raise ScriptError("must map speakers to voices", source=source, line=line, field="cast")
            fields["cast"] = {str(k): (None if v is None else str(v)) for k, v in data.items()}
        elif key == "lexicons":
            items = data if isinstance(data, list) else [data]
            if not all(isinstance(item, str) and item for item in items):
                raise ScriptError("must be a list of lexicon files", source=source, line=line, field="lexicons")
            fields["lexicons"] = items
        else:
            if not isinstance(data, (str, int, float)) or isinstance(data, bool):
                raise ScriptError("must be text", source=source, line=line, field=key)
            fields[key] = str(data)
    return fields, offset, body


def speakers_in(turns: Sequence[Turn]) -> list[str]:
    return list(dict.fromkeys(turn.speaker for turn in turns))
