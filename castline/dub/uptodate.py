"""Is the published dub already what these plans would produce? Then nothing needs to run.

Each language's live ``<programme>/<language>/manifest.json`` carries the ``render_key``
(``castline.dub.plan.dub_key``) of the plan that made it. A programme is up to date when every
language's manifest carries this run's key and every object it lists is intact (present, same
SHA-256 and size), and — for a video — ``<programme>/picture.json`` names the same languages in
the same order and its muxed files are intact. The manifests are read through a tolerant
projection (``DubManifestIndex``) so a manifest written by another castline version is judged by
its key, not rejected for its other fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Sequence

from castline.core.errors import StorageError
from castline.delivery.manifest import JsonRecord, ListedObject
from castline.dub.plan import LanguagePlan, dub_key
from castline.storage import Store, open_store


@dataclass(frozen=True)
class _UriObject(JsonRecord):
    json_ignore_unknown: ClassVar[bool] = True
    uri: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class DubManifestIndex(JsonRecord):
    """The render key of a live dub manifest and the objects it lists; every other key ignored."""

    json_ignore_unknown: ClassVar[bool] = True
    files: tuple[ListedObject, ...]
    stems: tuple[_UriObject, ...] = ()
    subtitles: tuple[_UriObject, ...] = ()
    render_key: str | None = None

    def objects(self, prefix: str) -> tuple[ListedObject, ...]:
        """Every listed object as a store key (stems and subtitles are listed by URI, under ``prefix``)."""
        by_uri = tuple(ListedObject(key=f"{prefix}/{item.uri.rstrip('/').rsplit('/', 1)[-1]}", sha256=item.sha256,
                                    bytes=item.bytes) for item in self.stems + self.subtitles)
        return self.files + by_uri


def _intact(store: Store, items: Sequence[ListedObject]) -> bool:
    for item in items:
        stored = store.info(item.key)
        if stored.sha256 != item.sha256 or stored.bytes != item.bytes:
            return False
    return True


def current_language(store: Store, plan: LanguagePlan, key: str | None = None) -> str | None:
    """The live manifest's URI when it carries ``key`` (default: ``dub_key(plan)``) and every file
    it lists is intact (with QA on, ``qa.json`` and ``report.html`` present too); else None."""
    location = f"{plan.prefix}/manifest.json"
    try:
        if not store.exists(location):
            return None
        index = DubManifestIndex.from_json(store.get_bytes(location))
        if index.render_key is None or index.render_key != (key or dub_key(plan)):
            return None
        if not _intact(store, index.objects(plan.prefix)):
            return None
        if plan.options.qa != "off" and not all(store.exists(f"{plan.prefix}/{name}")
                                                 for name in ("qa.json", "report.html")):
            return None
    except (ValueError, KeyError, TypeError, StorageError):
        return None
    return store.uri_for(location)


def current_picture(store: Store, plans: Sequence[LanguagePlan]) -> str | None:
    """``<programme>/picture.json``'s URI when it muxed these languages, in this order, from this
    video with these settings, and its files are intact; else None."""
    picture, options = plans[0].picture, plans[0].options
    location = f"{plans[0].programme}/picture.json"
    try:
        if picture is None or not store.exists(location):
            return None
        record = json.loads(store.get_bytes(location))
        if ([entry["language"] for entry in record["languages"]] != [plan.language for plan in plans]
                or record["video"]["sha256"] != picture.sha256
                or record["audio_codec"] != options.video_audio_codec
                or record["original_audio_kept"] != options.keep_original_audio
                or sorted(item["key"].rsplit(".", 1)[-1] for item in record["files"]) != sorted(options.containers)):
            return None
        listed = [ListedObject(key=item["key"], sha256=item["sha256"], bytes=item["bytes"])
                  for item in record["files"]]
        if not _intact(store, listed):
            return None
    except (ValueError, KeyError, TypeError, AttributeError, StorageError):
        return None
    return store.uri_for(location)


def current_dub(plans: Sequence[LanguagePlan]) -> dict[str, str] | None:
    """Manifest URIs by language (and ``"picture"`` for a video) when the whole published dub is
    already what ``plans`` would produce; None when anything would change (then run it all: the
    take cache makes an unchanged cue cost a read)."""
    if not plans:
        return None
    store = open_store(plans[0].options.out)
    current: dict[str, str] = {}
    for plan in plans:
        uri = current_language(store, plan)
        if uri is None:
            return None
        current[plan.language] = uri
    if plans[0].picture is not None:
        uri = current_picture(store, plans)
        if uri is None:
            return None
        current["picture"] = uri
    return current
