"""Parse YAML episode scripts into turns, chapters and declared cast, keeping line numbers.

The document is composed (not constructed) so every node keeps its start line; values are
read from the node tree by hand, which is also how duplicate keys are caught (PyYAML's
constructor silently keeps the last one).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from castline.core.errors import ScriptError
from castline.script.model import Chapter, SourceRef, Turn

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TOP_KEYS = ("episode", "cast", "turns")
EPISODE_KEYS = ("id", "title", "language", "preset", "lexicons")
CAST_KEYS = ("voice", "name")
SPOKEN_KEYS = ("speaker", "text", "pause_before_ms")
MARKER_KEYS = ("chapter", "pause_ms", "scene")
METADATA_KEYS = ("show", "author", "description", "number", "season", "publish_date", "cover", "explicit",
                 "copyright", "people")
"""Episode metadata for players and feeds, checked by ``castline.delivery.metadata`` (file/line/field)."""
CHAPTER_LINK_KEYS = ("url", "image")
"""Optional beside ``chapter``: an http(s) web page and image for the chapter (``chapters.json``)."""
MAX_PAUSE_MS = 60_000
"""Largest pause accepted in ``pause_ms`` / ``pause_before_ms``, in milliseconds."""

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_SPEAKER_KEY = re.compile(r"[^\W_][\w.\-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_BRACKET = re.compile(r"[\[\]{}]")
_MAX_FLOW_DEPTH = 200
_TURNS_LINE = re.compile(r"""^["']?turns["']?[ \t]*:""", re.MULTILINE)


@dataclass(frozen=True)
class Located:
    """A scalar value with the 1-based line and YAML path it came from."""

    value: str
    line: int
    field: str


@dataclass(frozen=True)
class CastDecl:
    """A ``cast`` entry: ``voice`` is None when the script leaves the choice to castline."""

    speaker: str
    voice: Located | None
    display_name: str


@dataclass(frozen=True)
class YamlScript:
    """Everything a YAML script says, before voices and presets are checked."""

    episode_id: Located | None
    title: str | None
    language: Located | None
    preset: Located | None
    cast: tuple[CastDecl, ...]
    turns: tuple[Turn, ...]
    chapters: tuple[Chapter, ...]
    warnings: tuple[str, ...]
    lexicons: tuple[Located, ...] = ()
    """``episode.lexicons``: pronunciation lexicon files, as written (relative to the script)."""


def looks_like_yaml_script(text: str) -> bool:
    """True if ``text`` is meant as a YAML script: a top-level ``turns:`` line, or a mapping
    with a ``turns`` key. Plain-text scripts never have either."""
    if _TURNS_LINE.search(text):
        return True
    if _flow_depth(text) > _MAX_FLOW_DEPTH:
        return False
    try:
        root = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return False
    return isinstance(root, MappingNode) and any(
        isinstance(key, ScalarNode) and key.value == "turns" for key, _ in root.value)


def parse_yaml(text: str, source: str) -> YamlScript:
    """Parse a YAML script; raises ``ScriptError`` naming ``source``, the line and YAML path."""
    return _Parser(source).parse(text)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []
        self._constructor = SafeConstructor()
        self.lexicons: list[Located] = []

    # -- structure ---------------------------------------------------------------------

    def parse(self, text: str) -> YamlScript:
        root = self._compose(text)
        if root is None:
            raise ScriptError("has no turns", source=self.source)
        if not isinstance(root, MappingNode):
            raise self._error(root, None, "the top level must be a mapping with 'episode', "
                              f"'cast' and 'turns' (found {_kind(root)})")
        top = self._mapping(root, "", TOP_KEYS, hint=_plaintext_hint(root))
        if "turns" not in top:
            raise self._error(root, None, "missing 'turns' (the list of spoken turns)"
                              + _plaintext_hint(root))
        episode = self._episode(top["episode"][1]) if "episode" in top else {}
        if "cast" not in top:
            raise self._error(root, None, "missing 'cast' (map each speaker to a voice)")
        cast = self._cast(top["cast"][1])
        turns, chapters = self._turns(top["turns"][1], cast)
        return YamlScript(
            episode_id=episode.get("id"),
            title=episode["title"].value if "title" in episode else None,
            language=episode.get("language"),
            preset=episode.get("preset"),
            cast=tuple(cast.values()),
            turns=turns,
            chapters=chapters,
            warnings=tuple(self.warnings),
            lexicons=tuple(self.lexicons),
        )

    def _episode(self, node: Node) -> dict[str, Located]:
        if _is_null(node):
            return {}
        fields = self._mapping(node, "episode", EPISODE_KEYS + METADATA_KEYS)
        out = {}
        for key, (_, value) in fields.items():
            if key == "lexicons":
                items = value.value if isinstance(value, SequenceNode) else [value]
                self.lexicons = [self._located(item, f"episode.lexicons[{n}]") for n, item in enumerate(items)]
                continue
            if key in METADATA_KEYS:
                continue
            path = f"episode.{key}"
            text = self._text(value, path)
            if key == "title":
                text = _collapse(text)
            if not text:
                raise self._error(value, path, "is empty")
            out[key] = Located(text, _line(value), path)
        return out

    def _cast(self, node: Node) -> dict[str, CastDecl]:
        if _is_null(node):
            raise self._error(node, "cast", "is empty (map each speaker to a voice)")
        if not isinstance(node, MappingNode):
            raise self._error(node, "cast", "must be a mapping of speaker to voice "
                              f"(found {_kind(node)})")
        cast: dict[str, CastDecl] = {}
        for speaker, (key_node, value) in self._mapping(node, "cast", None).items():
            path = f"cast.{speaker}"
            if not _SPEAKER_KEY.fullmatch(speaker):
                raise self._error(key_node, path, "a speaker key must be a short id (letters, "
                                  "digits, '.', '_', '-'); put the display name in 'name'")
            voice: Located | None = None
            name = speaker
            if isinstance(value, MappingNode):
                fields = self._mapping(value, path, CAST_KEYS)
                if "voice" in fields and not _is_null(fields["voice"][1]):
                    voice = self._located(fields["voice"][1], f"{path}.voice")
                if "name" in fields:
                    name = _collapse(self._text(fields["name"][1], f"{path}.name"))
                    if not name:
                        raise self._error(fields["name"][1], f"{path}.name", "is empty")
            elif not _is_null(value):
                voice = self._located(value, path)
            cast[speaker] = CastDecl(speaker, voice, name)
        if not cast:
            raise self._error(node, "cast", "is empty (map each speaker to a voice)")
        return cast

    def _turns(self, node: Node, cast: dict[str, CastDecl]
               ) -> tuple[tuple[Turn, ...], tuple[Chapter, ...]]:
        if _is_null(node):
            raise self._error(node, "turns", "has no turns")
        if not isinstance(node, SequenceNode):
            raise self._error(node, "turns", f"must be a list of turns (found {_kind(node)})")
        turns: list[Turn] = []
        chapters: list[Chapter] = []
        pending_chapter: tuple[str, int, str] | None = None
        pending_links: dict[str, str] = {}
        pending_pause: tuple[int, int, str] | None = None
        pending_scene: tuple[int, str] | None = None
        for position, item in enumerate(node.value):
            path = f"turns[{position}]"
            fields = self._mapping(item, path, SPOKEN_KEYS + MARKER_KEYS + CHAPTER_LINK_KEYS)
            links = self._chapter_links(fields, path)
            spoken = [key for key in SPOKEN_KEYS if key in fields]
            markers = [key for key in MARKER_KEYS if key in fields]
            if spoken and markers:
                key_node = fields[markers[0]][0]
                raise self._error(key_node, f"{path}.{markers[0]}", "a marker goes in its own "
                                  "list item, not inside a spoken turn")
            if not spoken and not markers:
                raise self._error(item, path, "empty item: give 'speaker' and 'text', or one of "
                                  "'chapter', 'pause_ms', 'scene'")
            if "chapter" in fields:
                value = fields["chapter"][1]
                title = _collapse(self._text(value, f"{path}.chapter"))
                if not title:
                    raise self._error(value, f"{path}.chapter", "needs a title")
                if pending_chapter is not None:
                    self._warn(pending_chapter[1], pending_chapter[2],
                               f"chapter '{pending_chapter[0]}' has no turns before the next "
                               "chapter; ignored")
                pending_chapter = (title, _line(value), f"{path}.chapter")
                pending_links = links
            if "pause_ms" in fields:
                pending_pause = self._add_pause(pending_pause, fields["pause_ms"][1],
                                                f"{path}.pause_ms")
            if "scene" in fields:
                pending_scene = (_line(fields["scene"][0]), f"{path}.scene")
            if not spoken:
                continue
            speaker = self._speaker(item, fields, path, cast)
            if "pause_before_ms" in fields:
                pending_pause = self._add_pause(pending_pause, fields["pause_before_ms"][1],
                                                f"{path}.pause_before_ms")
            text = self._clean_text(fields["text"][1], f"{path}.text")
            if pending_chapter is not None:
                chapters.append(Chapter(title=pending_chapter[0], first_turn=len(turns), **pending_links))
            turns.append(Turn(index=len(turns), speaker=speaker, text=text,
                              source=SourceRef(self.source, _line(item)),
                              pause_before_ms=pending_pause[0] if pending_pause else None,
                              scene_break_before=pending_scene is not None))
            pending_chapter = pending_pause = pending_scene = None
        if not turns:
            raise self._error(node, "turns", "has no turns")
        trailing = [(p[-2], p[-1]) for p in (pending_chapter, pending_pause, pending_scene) if p]
        for line, path in sorted(trailing):
            self._warn(line, path, "has no turn after it; ignored")
        return tuple(turns), tuple(chapters)

    def _chapter_links(self, fields: dict[str, tuple[Node, Node]], path: str) -> dict[str, str]:
        links = {}
        for key in CHAPTER_LINK_KEYS:
            if key in fields:
                if "chapter" not in fields:
                    raise self._error(fields[key][0], f"{path}.{key}", f"'{key}' goes beside a 'chapter'")
                value = self._located(fields[key][1], f"{path}.{key}")
                if not value.value.lower().startswith(("http://", "https://")):
                    raise self._error(fields[key][1], f"{path}.{key}", "must be an http(s) URL")
                links[key] = value.value
        return links

    def _speaker(self, item: Node, fields: dict[str, tuple[Node, Node]], path: str,
                 cast: dict[str, CastDecl]) -> str:
        for key in ("speaker", "text"):
            if key not in fields:
                raise self._error(item, path, f"missing '{key}'")
        node = fields["speaker"][1]
        speaker = self._text(node, f"{path}.speaker")
        if speaker not in cast:
            raise self._error(node, f"{path}.speaker", f"unknown speaker '{speaker}'"
                              f"{_did_you_mean(speaker, cast)} (cast: {', '.join(cast)})")
        return speaker

    def _clean_text(self, node: Node, path: str) -> str:
        text = _collapse(self._text(node, path))
        if not text:
            raise self._error(node, path, "is empty")
        control = _CONTROL.search(text)
        if control:
            raise self._error(node, path, f"contains control character "
                              f"U+{ord(control.group()):04X}")
        return text

    # -- values ------------------------------------------------------------------------

    def _mapping(self, node: Node, path: str, allowed: Sequence[str] | None, hint: str = ""
                 ) -> dict[str, tuple[Node, Node]]:
        """Keys of a mapping node -> (key node, value node); rejects duplicates and unknowns."""
        if not isinstance(node, MappingNode):
            raise self._error(node, path or None, f"must be a mapping (found {_kind(node)})")
        fields: dict[str, tuple[Node, Node]] = {}
        for key_node, value in node.value:
            if not isinstance(key_node, ScalarNode) or _is_null(key_node):
                raise self._error(key_node, path or None, "keys must be plain names")
            key = key_node.value
            where = f"{path}.{key}" if path else key
            if key in fields:
                raise self._error(key_node, where, f"duplicate key '{key}' (first at line "
                                  f"{_line(fields[key][0])})")
            if allowed is not None and key not in allowed:
                raise self._error(key_node, where, f"unknown key '{key}'"
                                  f"{_did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}"
                                  + hint)
            fields[key] = (key_node, value)
        return fields

    def _text(self, node: Node, path: str) -> str:
        """A scalar exactly as written (``text: Yes`` is the word, not a boolean)."""
        if isinstance(node, ScalarNode) and not _is_null(node):
            return node.value
        if _is_null(node):
            raise self._error(node, path, "is empty")
        raise self._error(node, path, f"must be text (found {_kind(node)})")

    def _located(self, node: Node, path: str) -> Located:
        text = self._text(node, path).strip()
        if not text:
            raise self._error(node, path, "is empty")
        return Located(text, _line(node), path)

    def _add_pause(self, pending: tuple[int, int, str] | None, node: Node, path: str
                   ) -> tuple[int, int, str]:
        """Pending pause (ms, line, path) after adding this one; pauses before a turn add up."""
        expected = f"must be a whole number of milliseconds from 0 to {MAX_PAUSE_MS}"
        if not isinstance(node, ScalarNode) or node.tag != _INT_TAG:
            raise self._error(node, path, f"{expected} (found {_kind(node)})")
        try:
            value = self._constructor.construct_yaml_int(node)
        except ValueError as exc:
            raise self._error(node, path, f"{expected} (found {_kind(node)})") from exc
        if not 0 <= value <= MAX_PAUSE_MS:
            raise self._error(node, path, f"{expected} (found {value})")
        if pending is None:
            return value, _line(node), path
        total = pending[0] + value
        if total > MAX_PAUSE_MS:
            raise self._error(node, path, f"pauses before this turn add up to {total} ms, "
                              f"over {MAX_PAUSE_MS}")
        return total, pending[1], pending[2]

    # -- errors ------------------------------------------------------------------------

    def _compose(self, text: str) -> Node | None:
        return compose_yaml(text, self.source)

    def _error(self, node: Node, path: str | None, message: str) -> ScriptError:
        return ScriptError(message, source=self.source, line=_line(node), field=path)

    def _warn(self, line: int, path: str, message: str) -> None:
        self.warnings.append(f"{self.source}:{line}: {path}: {message}")


def compose_yaml(text: str, source: str, *, first_line: int = 1, what: str = "invalid YAML") -> Node | None:
    """``text`` composed into YAML nodes (None when empty). Anything YAML cannot read (syntax, a
    control character, nesting too deep) is a one-line ``ScriptError`` naming ``source`` and the
    line, counted from ``first_line``, the line of the file that ``text`` starts on."""
    if _flow_depth(text) > _MAX_FLOW_DEPTH:
        raise ScriptError(f"brackets are nested more than {_MAX_FLOW_DEPTH} deep; "
                          "this is not a script", source=source)
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if exc.problem and exc.context:
            problem += f" ({exc.context})"
        raise ScriptError(f"{what}: {problem}", source=source,
                          line=mark.line + first_line if mark else None) from exc
    except RecursionError as exc:
        raise ScriptError("is nested too deeply to be a script", source=source) from exc
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + first_line if position is not None else None
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise ScriptError(f"{what}: {reason}", source=source, line=line) from exc


def _flow_depth(text: str) -> int:
    """Deepest bracket nesting, ignoring quoting: libyaml's composer recurses (and can crash)
    on very deep flow collections, so they are refused before parsing."""
    depth = deepest = 0
    for match in _BRACKET.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    value = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return f"'{value}'"


def _did_you_mean(word: str, choices: Sequence[str] | dict[str, object]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plaintext_hint(root: MappingNode) -> str:
    for key, _ in root.value:
        if isinstance(key, ScalarNode) and re.match(r"\s*speaker\s*\d", key.value, re.I):
            return " (this looks like a plain-text script: name it .txt)"
    return ""
