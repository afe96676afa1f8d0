"""Episode metadata: what players, podcast apps and stores read (title, show, cover, people...).

Validated where it enters — a script's ``episode:`` mapping (line numbers kept from the YAML
node tree, like ``castline.script.yaml_format``) or repeatable ``--meta KEY=VALUE`` options —
into frozen records. Every error names the file, line and field; a cover outside the
recommended shape (square, 1400–3000 px) is a ``warnings.warn``, not an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from castline.core.errors import ScriptError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

META_KEYS = ("title", "show", "author", "description", "number", "season", "publish_date", "cover",
             "explicit", "copyright", "people", "language")
"""Episode fields this module validates (``id`` and ``preset`` stay with the script parser)."""
CHAPTER_LINK_KEYS = ("url", "image")
COVER_MIN_PX = 1400
COVER_MAX_PX = 3000
COVER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class MetadataWarning(UserWarning):
    """A recoverable metadata problem (a cover players may scale or reject)."""


@dataclass(frozen=True)
class Person:
    """A ``podcast:person``: ``role`` follows the Podcasting 2.0 taxonomy (default host)."""

    name: str
    role: str = "host"


@dataclass(frozen=True)
class Cover:
    """A cover image: ``location`` is a local path (resolved) or a URI; the rest is known once
    the bytes have been read (``None`` for a URI not fetched yet)."""

    location: str
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ChapterLink:
    """A chapter's optional web page and image (``chapters.json`` ``url`` and ``img``)."""

    url: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class EpisodeMetadata:
    """Validated episode metadata; ``None`` / empty means not given.

    ``publish_date`` is ISO 8601 as written (a date or a date-time); ``show`` is a resolved
    local path or a URI of a show file.
    """

    title: str | None = None
    show: str | None = None
    author: str | None = None
    description: str | None = None
    number: int | None = None
    season: int | None = None
    publish_date: str | None = None
    cover: Cover | None = None
    explicit: bool | None = None
    copyright: str | None = None
    people: tuple[Person, ...] = ()
    language: str | None = None

    def merged(self, override: "EpisodeMetadata") -> "EpisodeMetadata":
        """This metadata with every field ``override`` gives replacing ours (``--meta`` wins)."""
        changes = {name: getattr(override, name) for name in self.__dataclass_fields__
                   if getattr(override, name) not in (None, ())}
        return replace(self, **changes)

    def publish_datetime(self) -> dt.datetime | None:
        """``publish_date`` as an aware date-time (a bare date is midnight UTC)."""
        return None if self.publish_date is None else _parse_date(self.publish_date)

    def to_manifest(self) -> dict[str, object]:
        """JSON-ready, stable field order: also what the render key hashes for metadata."""
        cover = None if self.cover is None else {
            "location": self.cover.location, "mime": self.cover.mime, "width": self.cover.width,
            "height": self.cover.height, "sha256": self.cover.sha256}
        return {"title": self.title, "show": self.show, "author": self.author, "description": self.description,
                "number": self.number, "season": self.season, "publish_date": self.publish_date, "cover": cover,
                "explicit": self.explicit, "copyright": self.copyright,
                "people": [{"name": person.name, "role": person.role} for person in self.people],
                "language": self.language}


# -- entry points ---------------------------------------------------------------------------------

def metadata_from_script(text: str, source: str, base_dir: str | Path | None = None) -> EpisodeMetadata:
    """The metadata under a YAML script's ``episode:`` (other keys there are left alone).

    ``base_dir`` resolves relative ``show`` and ``cover`` paths (default: the script's folder).
    """
    root = compose_located(text, source)
    base = Path(base_dir) if base_dir is not None else Path(source).parent
    if not isinstance(root, MappingNode):
        return EpisodeMetadata()
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "episode" and isinstance(value, MappingNode):
            return metadata_from_node(value, source, base, path="episode")
    return EpisodeMetadata()


def metadata_from_node(node: MappingNode, source: str, base_dir: str | Path, *, path: str = "episode",
                       ignore_unknown: bool = True) -> EpisodeMetadata:
    """Validate the metadata keys of a YAML mapping node (keys outside ``META_KEYS`` are skipped
    when ``ignore_unknown``: the script parser owns them)."""
    reader = NodeReader(source)
    values: dict[str, object] = {}
    for key, (key_node, value) in reader.mapping(node, path, None if ignore_unknown else META_KEYS).items():
        if key not in META_KEYS:
            continue
        values[key] = _field(reader, key, value, f"{path}.{key}", Path(base_dir))
    return EpisodeMetadata(**values)


def metadata_from_options(options: Iterable[str], base_dir: str | Path = ".", *,
                          source: str = "--meta") -> EpisodeMetadata:
    """``KEY=VALUE`` strings (repeatable ``--meta``); ``people`` is ``Name[:role]`` separated by
    commas, or one ``person=Name[:role]`` per option. Errors name ``--meta KEY``."""
    values: dict[str, object] = {}
    people: list[Person] = []
    for option in options:
        key, sep, raw = option.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ScriptError(f"'{option}' must be KEY=VALUE", source=source)
        field = f"{source} {key}"
        if key == "person":
            people.extend(_people_text(raw, field))
            continue
        if key not in META_KEYS:
            raise ScriptError(f"unknown key '{key}'; allowed: {', '.join(META_KEYS)}, person", source=source)
        if key == "people":
            people.extend(_people_text(raw, field))
            continue
        values[key] = _from_text(key, raw.strip(), field, Path(base_dir))
    if people:
        values["people"] = tuple(people)
    return EpisodeMetadata(**values)


def chapter_link_from_node(node: MappingNode, source: str, path: str) -> ChapterLink:
    """``url`` / ``image`` beside a chapter marker (each an http(s) URL: apps fetch them)."""
    reader = NodeReader(source)
    fields = reader.mapping(node, path, None)
    found = {}
    for key in CHAPTER_LINK_KEYS:
        if key in fields:
            value = fields[key][1]
            found[key] = _link(reader.text(value, f"{path}.{key}"), reader, value, f"{path}.{key}")
    return ChapterLink(**found)


# -- covers ---------------------------------------------------------------------------------------

def inspect_cover(data: bytes, location: str, *, where: str | None = None) -> Cover:
    """Check cover bytes: JPEG or PNG (else an error), square and 1400–3000 px (else a warning)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ScriptError(f"cover {location} is not an image (JPEG or PNG expected)", source=where,
                          field="cover") from exc
    if kind not in COVER_FORMATS:
        raise ScriptError(f"cover {location} is {kind}; use JPEG or PNG", source=where, field="cover")
    if width != height or not COVER_MIN_PX <= width <= COVER_MAX_PX:
        warnings.warn(f"cover {location} is {width}x{height} px; podcast apps and stores ask for a square "
                      f"image of {COVER_MIN_PX}–{COVER_MAX_PX} px", MetadataWarning, stacklevel=2)
    return Cover(location=location, mime=COVER_FORMATS[kind], width=width, height=height,
                 sha256=hashlib.sha256(data).hexdigest())


def read_cover(location: str) -> bytes:
    """The bytes of a cover: a local path or an ``s3://`` object."""
    from castline.storage.inputs import fetch_input

    with fetch_input(location) as path:
        return Path(path).read_bytes()


def is_uri(text: str) -> bool:
    return bool(_URI.match(text))


# -- YAML with lines ------------------------------------------------------------------------------

def compose_located(text: str, source: str) -> Node | None:
    """The YAML node tree of ``text`` (every node keeps its line); syntax errors name the line."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ScriptError(f"invalid YAML: {exc.problem or exc.context or 'syntax error'}", source=source,
                          line=mark.line + 1 if mark else None) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise ScriptError(f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else 'syntax error'}",
                          source=source) from exc


class NodeReader:
    """Reads typed values off YAML nodes; every error carries source, line and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: Node | None, field: str | None, message: str) -> ScriptError:
        return ScriptError(message, source=self.source, line=None if node is None else line_of(node), field=field)

    def mapping(self, node: Node, path: str, allowed: tuple[str, ...] | None) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.error(node, path or None, f"must be a mapping (found {kind_of(node)})")
        fields: dict[str, tuple[Node, Node]] = {}
        for key_node, value in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL_TAG:
                raise self.error(key_node, path or None, "keys must be plain names")
            key = key_node.value
            where = f"{path}.{key}" if path else key
            if key in fields:
                raise self.error(key_node, where, f"duplicate key '{key}' (first at line "
                                 f"{line_of(fields[key][0])})")
            if allowed is not None and key not in allowed:
                raise self.error(key_node, where, f"unknown key '{key}'; allowed: {', '.join(allowed)}")
            fields[key] = (key_node, value)
        return fields

    def text(self, node: Node, path: str) -> str:
        if isinstance(node, ScalarNode) and node.tag != _NULL_TAG:
            value = " ".join(node.value.split())
            if value:
                return value
        if isinstance(node, ScalarNode):
            raise self.error(node, path, "is empty")
        raise self.error(node, path, f"must be text (found {kind_of(node)})")

    def integer(self, node: Node, path: str, minimum: int = 0) -> int:
        text = self.text(node, path)
        if not re.fullmatch(r"\d{1,9}", text) or int(text) < minimum:
            raise self.error(node, path, f"must be a whole number ≥ {minimum} (found '{text[:40]}')")
        return int(text)

    def boolean(self, node: Node, path: str) -> bool:
        text = self.text(node, path).lower()
        if isinstance(node, ScalarNode) and (node.tag == _BOOL_TAG or text in _TRUE + _FALSE):
            return text in _TRUE
        raise self.error(node, path, f"must be true or false (found '{text[:40]}')")

    def sequence(self, node: Node, path: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, path, f"must be a list (found {kind_of(node)})")
        return list(node.value)


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing"
    return f"'{node.value[:37]}...'" if len(node.value) > 40 else f"'{node.value}'"


# -- fields ---------------------------------------------------------------------------------------

def _field(reader: NodeReader, key: str, node: Node, path: str, base_dir: Path) -> object:
    if key == "people":
        return _people_nodes(reader, node, path)
    if key in ("number", "season"):
        return reader.integer(node, path, minimum=1 if key == "number" else 0)
    if key == "explicit":
        return reader.boolean(node, path)
    if key == "description":
        reader.text(node, path)
        return node.value.strip()
    return _from_text(key, reader.text(node, path), path, base_dir, source=reader.source, line=line_of(node))


def _from_text(key: str, text: str, field: str, base_dir: Path, *, source: str | None = None,
               line: int | None = None) -> object:
    def fail(message: str) -> ScriptError:
        return ScriptError(message, source=source, line=line, field=field)

    if not text:
        raise fail("is empty")
    if key in ("number", "season"):
        if not re.fullmatch(r"\d{1,9}", text) or (key == "number" and int(text) < 1):
            raise fail(f"must be a whole number ≥ {1 if key == 'number' else 0} (found '{text[:40]}')")
        return int(text)
    if key == "explicit":
        if text.lower() not in _TRUE + _FALSE:
            raise fail(f"must be true or false (found '{text[:40]}')")
        return text.lower() in _TRUE
    if key == "publish_date":
        try:
            _parse_date(text)
        except ValueError as exc:
            raise fail(f"'{text[:40]}' is not an ISO 8601 date or date-time (e.g. 2026-12-03 or "
                       "2026-12-03T09:00:00Z)") from exc
        return text
    if key == "language":
        if not _LANGUAGE.match(text):
            raise fail(f"'{text[:40]}' is not a language tag (e.g. en, en-GB)")
        return text
    if key == "show":
        return text if is_uri(text) else str(_local(text, base_dir, fail, "show file"))
    if key == "cover":
        try:
            if text.startswith("s3://"):
                return inspect_cover(read_cover(text), text, where=source)
            if is_uri(text) and not text.startswith("file://"):
                raise fail(f"'{text[:60]}': a cover is a file next to the script or an s3:// URI")
            path = _local(text.removeprefix("file://"), base_dir, fail, "cover image")
            return inspect_cover(path.read_bytes(), str(path), where=source)
        except ScriptError as exc:
            raise fail(exc.message) from exc
    if key == "people":
        return tuple(_people_text(text, field))
    return " ".join(text.split()) if key != "description" else text.strip()


def _local(text: str, base_dir: Path, fail, what: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise fail(f"{what} '{text}' not found (relative paths start at the script's folder)")
    return path


def _people_nodes(reader: NodeReader, node: Node, path: str) -> tuple[Person, ...]:
    people = []
    for position, item in enumerate(reader.sequence(node, path)):
        where = f"{path}[{position}]"
        fields = reader.mapping(item, where, ("name", "role"))
        if "name" not in fields:
            raise reader.error(item, where, "missing 'name'")
        name = reader.text(fields["name"][1], f"{where}.name")
        role = reader.text(fields["role"][1], f"{where}.role").lower() if "role" in fields else "host"
        people.append(Person(name, role))
    return tuple(people)


def _people_text(text: str, field: str) -> list[Person]:
    people = []
    for part in text.split(","):
        name, _, role = part.partition(":")
        name, role = " ".join(name.split()), role.strip().lower() or "host"
        if not name:
            raise ScriptError(f"'{text[:60]}' needs Name[:role] entries separated by commas", field=field)
        people.append(Person(name, role))
    return people


def _link(text: str, reader: NodeReader, node: Node, path: str) -> str:
    if not text.lower().startswith(("http://", "https://")):
        raise reader.error(node, path, f"'{text[:60]}' must be an http(s) URL")
    return text


def _parse_date(text: str) -> dt.datetime:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = dt.date.fromisoformat(text)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    if "T" not in text and " " not in text:
        raise ValueError(text)
    moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
