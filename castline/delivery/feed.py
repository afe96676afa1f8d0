"""Podcast feeds: a show file (YAML) describes a show; ``feed.xml`` is built from the published
manifests of its episodes, as RSS 2.0 with the ``itunes`` and ``podcast`` namespaces.

Store layout: ``shows/<show id>/feed.xml`` (replaced atomically, like a live manifest) and
``shows/<show id>/episodes/<episode id>.json`` (one small index entry per published episode,
so a rebuild reads only this show's manifests). Enclosure and sidecar URLs are the show's
``public_base_url`` followed by the object's store key.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

from castline.core.errors import ScriptError, StorageError
from castline.delivery.json_record import JsonObject
from castline.delivery.manifest import JsonRecord
from castline.delivery.metadata import NodeReader, Person, compose_located, is_uri
from castline.storage import ObjectInfo, Store

SHOW_KEYS = ("id", "title", "description", "author", "owner", "image", "language", "categories", "explicit",
             "link", "public_base_url", "format", "lexicons")
"""``lexicons`` belongs to pronunciation (read by the render planner); the feed ignores it."""
REQUIRED_SHOW_KEYS = ("id", "title", "description", "author", "image", "language", "public_base_url")
ENCLOSURE_TYPES = {"mp3": "audio/mpeg", "m4a": "audio/x-m4a"}
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
_SHOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CATEGORY = re.compile(r"^[^>]+(>[^>]+)?$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Owner:
    name: str
    email: str


@dataclass(frozen=True)
class Show:
    """A validated show file. ``image`` is an http(s) URL or a resolved local path (published
    beside the feed); ``categories`` are ``"Category"`` or ``"Category > Subcategory"``;
    ``format`` is the enclosure format (mp3 or m4a)."""

    show_id: str
    title: str
    description: str
    author: str
    image: str
    language: str
    public_base_url: str
    owner: Owner | None = None
    categories: tuple[str, ...] = ()
    explicit: bool = False
    link: str | None = None
    format: str = "mp3"
    source: str = ""

    def url_for(self, key: str) -> str:
        return self.public_base_url + key

    @property
    def feed_key(self) -> str:
        return f"shows/{self.show_id}/feed.xml"


@dataclass(frozen=True)
class FeedEpisode:
    """What one item of the feed says, read from a published episode manifest."""

    episode_id: str
    title: str
    published: dt.datetime
    duration_s: float
    enclosure_key: str
    enclosure_bytes: int
    enclosure_type: str
    description: str | None = None
    number: int | None = None
    season: int | None = None
    explicit: bool | None = None
    image_key: str | None = None
    chapters_key: str | None = None
    transcripts: tuple[tuple[str, str], ...] = ()
    people: tuple[Person, ...] = ()
    language: str | None = None


# -- show files -------------------------------------------------------------------------------------

def load_show(path: str | Path) -> Show:
    """Read and validate a show file; errors name the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read show file: {exc}", source=str(path)) from exc
    return parse_show(text, str(path), path.parent)


def parse_show(text: str, source: str, base_dir: str | Path = ".") -> Show:
    reader = NodeReader(source)
    root = compose_located(text, source)
    if root is None:
        raise ScriptError("is empty (a show file is a mapping: id, title, ...)", source=source)
    fields = reader.mapping(root, "", SHOW_KEYS)
    for key in REQUIRED_SHOW_KEYS:
        if key not in fields:
            raise reader.error(root, key, f"missing '{key}'")
    value = {key: node for key, (_, node) in fields.items()}
    show_id = reader.text(value["id"], "id")
    if not _SHOW_ID.match(show_id):
        raise reader.error(value["id"], "id", "must be a short id (letters, digits, '.', '_', '-')")
    base_url = reader.text(value["public_base_url"], "public_base_url")
    if not base_url.lower().startswith(("http://", "https://")):
        raise reader.error(value["public_base_url"], "public_base_url", "must be an http(s) URL")
    language = reader.text(value["language"], "language")
    if not _LANGUAGE.match(language):
        raise reader.error(value["language"], "language", f"'{language}' is not a language tag (e.g. en, en-GB)")
    image = reader.text(value["image"], "image")
    if not image.lower().startswith(("http://", "https://")):
        if is_uri(image):
            raise reader.error(value["image"], "image", "must be an http(s) URL or a file next to the show file")
        local = Path(image) if Path(image).is_absolute() else Path(base_dir) / image
        if not local.is_file():
            raise reader.error(value["image"], "image", f"'{image}' not found (relative to the show file)")
        image = str(local)
    owner = None
    if "owner" in value:
        owner_fields = reader.mapping(value["owner"], "owner", ("name", "email"))
        for key in ("name", "email"):
            if key not in owner_fields:
                raise reader.error(value["owner"], "owner", f"missing '{key}'")
        email_node = owner_fields["email"][1]
        email_text = reader.text(email_node, "owner.email")
        if not _EMAIL.match(email_text):
            raise reader.error(email_node, "owner.email", f"'{email_text}' is not an email address")
        owner = Owner(reader.text(owner_fields["name"][1], "owner.name"), email_text)
    categories: list[str] = []
    if "categories" in value:
        for position, node in enumerate(reader.sequence(value["categories"], "categories")):
            category = reader.text(node, f"categories[{position}]")
            if not _CATEGORY.match(category):
                raise reader.error(node, f"categories[{position}]", "use 'Category' or 'Category > Subcategory'")
            categories.append(" > ".join(part.strip() for part in category.split(">")))
    link = None
    if "link" in value:
        link = reader.text(value["link"], "link")
        if not link.lower().startswith(("http://", "https://")):
            raise reader.error(value["link"], "link", "must be an http(s) URL")
    fmt = reader.text(value["format"], "format").lower() if "format" in value else "mp3"
    if fmt not in ENCLOSURE_TYPES:
        raise reader.error(value["format"], "format", f"'{fmt}': enclosures are {' or '.join(ENCLOSURE_TYPES)}")
    return Show(show_id=show_id, title=reader.text(value["title"], "title"),
                description=_block(value["description"], reader, "description"),
                author=reader.text(value["author"], "author"), image=image, language=language,
                public_base_url=base_url.rstrip("/") + "/", owner=owner, categories=tuple(categories),
                explicit=reader.boolean(value["explicit"], "explicit") if "explicit" in value else False,
                link=link, format=fmt, source=source)


def _block(node, reader: NodeReader, path: str) -> str:
    reader.text(node, path)
    return node.value.strip()


# -- episodes from manifests ------------------------------------------------------------------------

def episode_guid(show_id: str, episode_id: str) -> str:
    """The item's ``guid``: depends on the show and episode ids only, so a re-render keeps it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"castline:show/{show_id}/episode/{episode_id}"))


@dataclass(frozen=True)
class _FeedFile(JsonRecord):
    json_ignore_unknown: ClassVar[bool] = True
    format: str
    key: str
    bytes: int = 0


@dataclass(frozen=True)
class _Finished(JsonRecord):
    json_ignore_unknown: ClassVar[bool] = True
    finished_at: str | None = None


@dataclass(frozen=True)
class FeedManifestView(JsonRecord):
    """What a feed item needs of a published ``castline.episode/1`` manifest.

    A projection that ignores every other key, on purpose: a show's feed is rebuilt from every
    published episode, including ones written by an older or newer castline."""

    json_ignore_unknown: ClassVar[bool] = True
    episode: str
    files: tuple[_FeedFile, ...] = ()
    transcripts: tuple[_FeedFile, ...] = ()
    title: str | None = None
    language: str | None = None
    duration_seconds: float = 0.0
    render: _Finished | None = None
    metadata: JsonObject | None = None
    cover: _FeedFile | None = None
    chapters_file: _FeedFile | None = None


def feed_episode_from_manifest(manifest: FeedManifestView | Mapping[str, object] | bytes, fmt: str) -> FeedEpisode:
    """A feed item from a published manifest: the ``fmt`` file is the enclosure.

    ``pubDate`` is the metadata's ``publish_date``, else the time the render finished.
    """
    view = manifest if isinstance(manifest, FeedManifestView) else FeedManifestView.from_json(manifest)
    files = {entry.format: entry for entry in view.files}
    if fmt not in files:
        raise StorageError(f"episode '{view.episode}' has no {fmt} file for the feed "
                           f"(published: {', '.join(files) or 'none'})")
    meta = dict(view.metadata or {})
    published = meta.get("publish_date") or (view.render.finished_at if view.render else None)
    moment = dt.datetime.fromisoformat(str(published)) if published else dt.datetime.now(dt.timezone.utc)
    if len(str(published)) == 10:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return FeedEpisode(
        episode_id=view.episode, title=str(meta.get("title") or view.title or view.episode),
        published=moment, duration_s=float(view.duration_seconds),
        enclosure_key=files[fmt].key, enclosure_bytes=int(files[fmt].bytes),
        enclosure_type=ENCLOSURE_TYPES[fmt], description=meta.get("description"), number=meta.get("number"),
        season=meta.get("season"), explicit=meta.get("explicit"), image_key=view.cover.key if view.cover else None,
        chapters_key=view.chapters_file.key if view.chapters_file else None,
        transcripts=tuple((entry.key, entry.format) for entry in view.transcripts),
        people=tuple(Person(person["name"], person.get("role", "host")) for person in meta.get("people", [])),
        language=meta.get("language") or view.language)


# -- the feed ---------------------------------------------------------------------------------------

def build_feed(show: Show, episodes: Sequence[FeedEpisode], image_url: str | None = None) -> bytes:
    """RSS 2.0 (``itunes`` and ``podcast`` namespaces), newest episode first."""
    from castline.delivery.sidecars import CHAPTERS_TYPE, TRANSCRIPT_TYPES

    for prefix, uri in (("itunes", ITUNES), ("podcast", PODCAST), ("atom", ATOM)):
        ET.register_namespace(prefix, uri)
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", show.title)
    _text(channel, "link", show.link or show.public_base_url)
    _text(channel, "description", show.description)
    _text(channel, "language", show.language)
    ET.SubElement(channel, f"{{{ATOM}}}link", {"href": show.url_for(show.feed_key), "rel": "self",
                                                 "type": "application/rss+xml"})
    _text(channel, f"{{{ITUNES}}}author", show.author)
    if show.owner is not None:
        owner = ET.SubElement(channel, f"{{{ITUNES}}}owner")
        _text(owner, f"{{{ITUNES}}}name", show.owner.name)
        _text(owner, f"{{{ITUNES}}}email", show.owner.email)
    ET.SubElement(channel, f"{{{ITUNES}}}image", {"href": image_url or show.image})
    for category in show.categories:
        top, _, sub = category.partition(" > ")
        element = ET.SubElement(channel, f"{{{ITUNES}}}category", {"text": top})
        if sub:
            ET.SubElement(element, f"{{{ITUNES}}}category", {"text": sub})
    _text(channel, f"{{{ITUNES}}}explicit", "true" if show.explicit else "false")
    # Podcasting 2.0: UUIDv5 of the feed URL without scheme and trailing slashes, in this namespace.
    feed_url = re.sub(r"^[a-z]+://|/+$", "", show.url_for(show.feed_key))
    _text(channel, f"{{{PODCAST}}}guid", str(uuid.uuid5(PODCAST_GUID_NAMESPACE, feed_url)))
    for episode in sorted(episodes, key=lambda item: (item.published, item.episode_id), reverse=True):
        item = ET.SubElement(channel, "item")
        _text(item, "title", episode.title)
        if episode.description:
            _text(item, "description", episode.description)
        _text(item, "guid", episode_guid(show.show_id, episode.episode_id)).set("isPermaLink", "false")
        _text(item, "pubDate", email.utils.format_datetime(episode.published.astimezone(dt.timezone.utc)))
        ET.SubElement(item, "enclosure", {"url": show.url_for(episode.enclosure_key),
                                          "length": str(episode.enclosure_bytes), "type": episode.enclosure_type})
        _text(item, f"{{{ITUNES}}}title", episode.title)
        _text(item, f"{{{ITUNES}}}duration", str(max(1, round(episode.duration_s))))
        if episode.image_key:
            ET.SubElement(item, f"{{{ITUNES}}}image", {"href": show.url_for(episode.image_key)})
        if episode.number is not None:
            _text(item, f"{{{ITUNES}}}episode", str(episode.number))
        if episode.season is not None:
            _text(item, f"{{{ITUNES}}}season", str(episode.season))
        if episode.explicit is not None:
            _text(item, f"{{{ITUNES}}}explicit", "true" if episode.explicit else "false")
        _text(item, f"{{{ITUNES}}}episodeType", "full")
        if episode.chapters_key:
            ET.SubElement(item, f"{{{PODCAST}}}chapters", {"url": show.url_for(episode.chapters_key),
                                                          "type": CHAPTERS_TYPE})
        for key, fmt in episode.transcripts:
            if fmt not in TRANSCRIPT_TYPES:
                continue
            attributes = {"url": show.url_for(key), "type": TRANSCRIPT_TYPES[fmt]}
            if episode.language:
                attributes["language"] = episode.language
            if fmt in ("srt", "vtt"):
                attributes["rel"] = "captions"
            ET.SubElement(item, f"{{{PODCAST}}}transcript", attributes)
        for person in episode.people:
            _text(item, f"{{{PODCAST}}}person", person.name).set("role", person.role)
    ET.indent(rss)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="utf-8") + b"\n"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


# -- the feed in the store --------------------------------------------------------------------------

def index_key(show_id: str, episode_id: str) -> str:
    return f"shows/{show_id}/episodes/{episode_id}.json"


def register_episode(store: Store, show_id: str, episode_id: str, manifest_key: str) -> ObjectInfo:
    """Record that ``episode_id`` (live manifest at ``manifest_key``) belongs to the show."""
    body = json.dumps({"episode": episode_id, "manifest_key": manifest_key}, sort_keys=True).encode("utf-8")
    return store.put_bytes(body + b"\n", index_key(show_id, episode_id))


def rebuild_feed(store: Store, show: Show) -> ObjectInfo:
    """Build ``feed.xml`` from every registered episode's live manifest and swap it in atomically.

    A local show image is published once as ``shows/<id>/cover.<ext>``.
    """
    image_url = None
    if not show.image.lower().startswith(("http://", "https://")):
        key = f"shows/{show.show_id}/cover{Path(show.image).suffix.lower()}"
        store.put_file(show.image, key)
        image_url = show.url_for(key)
    episodes = []
    prefix = f"shows/{show.show_id}/episodes/"
    for key in sorted(store.list(prefix)):
        if not key.endswith(".json"):
            continue
        entry = json.loads(store.get_bytes(key))
        if not store.exists(entry["manifest_key"]):
            continue
        episodes.append(feed_episode_from_manifest(store.get_bytes(entry["manifest_key"]), show.format))
    return store.put_bytes(build_feed(show, episodes, image_url), show.feed_key)

