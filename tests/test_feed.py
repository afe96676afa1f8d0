"""Show files and podcast feeds: RSS 2.0 + itunes + podcast namespaces, read by feedparser."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import feedparser
import numpy as np
import pytest
import soundfile
from PIL import Image

from castline.audio.encode import encode_file
from castline.core.errors import ScriptError, StorageError
from castline.delivery.feed import (ITUNES, PODCAST, episode_guid, feed_episode_from_manifest, load_show, parse_show,
                                    rebuild_feed, register_episode)
from castline.storage import open_store

SHOW = """\
id: castline-talks
title: Castline Talks
description: |
  Conversations made with castline.
author: Ada Author
owner:
  name: Ada Author
  email: ada@example.org
image: cover.png
language: en
categories:
  - Technology
  - Society & Culture > Documentary
explicit: false
link: https://example.org/show
public_base_url: https://cdn.example.org/podcast
"""


@pytest.fixture
def show_file(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (1400, 1400), (10, 10, 10)).save(buffer, "PNG")
    (tmp_path / "cover.png").write_bytes(buffer.getvalue())
    path = tmp_path / "show.yaml"
    path.write_text(SHOW)
    return path


def _publish(store, folder, episode_id: str, seconds: float, release: str, meta: dict) -> dict:
    """Put a real MP3, sidecars and a manifest into the store, as publishing does."""
    rate = 24_000
    t = np.arange(int(seconds * rate)) / rate
    wav = folder / f"{episode_id}-{release}.wav"
    soundfile.write(wav, (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    mp3 = folder / f"{episode_id}-{release}.mp3"
    encode_file(wav, "mp3", mp3)
    prefix = f"{episode_id}/releases/{release}"
    audio = store.put_file(mp3, f"{prefix}/episode.mp3")
    chapters = store.put_bytes(b'{"version": "1.2.0", "chapters": []}', f"{prefix}/chapters.json")
    manifest = {
        "schema": "castline.episode/1", "episode": episode_id, "title": meta.get("title", episode_id),
        "language": "en", "duration_seconds": seconds, "render": {"finished_at": "2026-12-01T10:00:00+00:00"},
        "files": [{"format": "mp3", "key": audio.key, "bytes": audio.bytes, "sha256": audio.sha256}],
        "transcripts": [{"format": fmt, "key": f"{prefix}/transcript.{fmt}"} for fmt in ("srt", "vtt", "json")],
        "chapters_file": {"format": "json", "key": chapters.key}, "metadata": meta, "show": "castline-talks",
    }
    live = store.put_bytes(json.dumps(manifest).encode(), f"{episode_id}/manifest.json")
    register_episode(store, "castline-talks", episode_id, live.key)
    return manifest


def test_show_file_is_validated(show_file):
    show = load_show(show_file)
    assert show.show_id == "castline-talks" and show.public_base_url == "https://cdn.example.org/podcast/"
    assert show.categories == ("Technology", "Society & Culture > Documentary")
    assert show.owner.email == "ada@example.org" and show.image == str(show_file.parent / "cover.png")
    assert show.description == "Conversations made with castline."
    source = str(show_file)
    cases = [
        ("  email: ada@example.org", "  email: nobody", ":8: owner.email:", "not an email"),
        ("public_base_url: https://cdn.example.org/podcast", "public_base_url: cdn", ":16: public_base_url:",
         "http(s) URL"),
        ("image: cover.png", "image: gone.png", ":9: image:", "not found"),
        ("explicit: false", "explicit: maybe", ":14: explicit:", "true or false"),
        ("language: en", "langauge: en", ":10: langauge:", "unknown key"),
        ("id: castline-talks", "id: a/b", ":1: id:", "short id"),
    ]
    for old, new, where, message in cases:
        with pytest.raises(ScriptError) as error:
            parse_show(SHOW.replace(old, new), source, show_file.parent)
        assert f"{source}{where}" in str(error.value) and message in str(error.value), str(error.value)
    with pytest.raises(ScriptError, match="missing 'title'"):
        parse_show(SHOW.replace("title: Castline Talks\n", ""), source, show_file.parent)


def test_feed_with_two_episodes_then_a_rerender(show_file, tmp_path):
    store = open_store(tmp_path / "store")
    show = load_show(show_file)
    _publish(store, tmp_path, "ep-1", 3.0, "r1", {
        "title": "First", "description": "The first one.", "number": 1, "season": 1,
        "publish_date": "2026-11-01", "people": [{"name": "Ada", "role": "host"}, {"name": "Joe", "role": "guest"}],
        "explicit": False})
    _publish(store, tmp_path, "ep-2", 2.0, "r1", {"title": "Second", "number": 2, "season": 1,
                                                   "publish_date": "2026-11-08T09:00:00Z"})
    info = rebuild_feed(store, show)
    assert info.key == "shows/castline-talks/feed.xml"
    body = store.get_bytes(info.key)
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.feed.title == "Castline Talks"
    assert parsed.feed.image.href == "https://cdn.example.org/podcast/shows/castline-talks/cover.png"
    assert [entry.title for entry in parsed.entries] == ["Second", "First"]
    first = parsed.entries[1]
    enclosure = first.enclosures[0]
    stored = store.info("ep-1/releases/r1/episode.mp3")
    assert enclosure.href == "https://cdn.example.org/podcast/ep-1/releases/r1/episode.mp3"
    assert int(enclosure.length) == stored.bytes and enclosure.type == "audio/mpeg"
    assert first.id == episode_guid("castline-talks", "ep-1")
    assert first.itunes_duration == "3" and first.itunes_episode == "1" and first.itunes_season == "1"
    assert first.published_parsed[:3] == (2026, 11, 1)

    # What feedparser does not model, read from the XML itself.
    root = ET.fromstring(body)
    item = [node for node in root.iter("item") if node.findtext("title") == "First"][0]
    assert item.find(f"{{{PODCAST}}}chapters").get("type") == "application/json+chapters"
    transcripts = {node.get("type"): node.get("url") for node in item.findall(f"{{{PODCAST}}}transcript")}
    assert set(transcripts) == {"application/x-subrip", "text/vtt", "application/json"}
    assert [(node.text, node.get("role")) for node in item.findall(f"{{{PODCAST}}}person")] == [
        ("Ada", "host"), ("Joe", "guest")]
    assert root.find(f"channel/{{{ITUNES}}}owner/{{{ITUNES}}}email").text == "ada@example.org"
    categories = root.findall(f"channel/{{{ITUNES}}}category")
    assert [node.get("text") for node in categories] == ["Technology", "Society & Culture"]
    assert categories[1].find(f"{{{ITUNES}}}category").get("text") == "Documentary"

    # Re-render ep-1 (longer audio, a new release): same guid, the new file's exact length.
    _publish(store, tmp_path, "ep-1", 5.0, "r2", {"title": "First (fixed)", "number": 1, "season": 1,
                                                   "publish_date": "2026-11-01"})
    again = feedparser.parse(store.get_bytes(rebuild_feed(store, show).key))
    entry = [item for item in again.entries if item.id == episode_guid("castline-talks", "ep-1")]
    assert len(entry) == 1 and len(again.entries) == 2
    assert entry[0].title == "First (fixed)"
    new_length = store.info("ep-1/releases/r2/episode.mp3").bytes
    assert int(entry[0].enclosures[0].length) == new_length != stored.bytes
    assert entry[0].enclosures[0].href.endswith("ep-1/releases/r2/episode.mp3")


def test_missing_enclosure_format_is_named():
    with pytest.raises(StorageError, match="has no m4a file"):
        feed_episode_from_manifest({"episode": "e", "files": [{"format": "mp3", "key": "k", "bytes": 1}]}, "m4a")


EPISODE = """\
episode:
  id: feed-flow
  title: Feed flow
  show: show.yaml
  author: Ada Author
  number: 1
  publish_date: 2026-12-03
  cover: cover.png
cast:
  host: heart
turns:
  - chapter: Hello
    url: https://example.org/hello
  - speaker: host
    text: Hello and welcome.
  - chapter: Goodbye
  - speaker: host
    text: That is all. Goodbye.
"""


@pytest.mark.slow
def test_rendering_an_episode_of_a_show_tags_files_and_rebuilds_the_feed(prefect_api, show_file):
    """The whole path: script metadata → tagged files, sidecars → feed.xml; a new title re-tags
    and re-publishes without synthesising a chunk, under the same guid."""
    from castline.qa.settings import QASettings
    from castline.render.options import RenderOptions
    from castline_flows.render_episode import run_render
    from tag_readers import ffmetadata_tags, ffmpeg_chapters

    folder = show_file.parent
    (folder / "episode.yaml").write_text(EPISODE, encoding="utf-8")
    options = RenderOptions(script=str(folder / "episode.yaml"), out=str(folder / "out"), formats=("mp3", "m4a"),
                            workers=1, qa=QASettings(policy="off"))
    run_render(options)
    store = open_store(folder / "out")
    manifest = json.loads(store.get_bytes("feed-flow/manifest.json"))
    assert manifest["show"] == "castline-talks" and manifest["metadata"]["number"] == 1
    mp3 = folder / "out" / manifest["files"][0]["key"]
    assert ffmetadata_tags(mp3)["title"] == "Feed flow" and ffmetadata_tags(mp3)["album"] == "Castline Talks"
    assert [title for _, _, title in ffmpeg_chapters(mp3)] == ["Hello", "Goodbye"]
    chapters = json.loads(store.get_bytes(manifest["chapters_file"]["key"]))
    assert chapters["chapters"][0] == {"startTime": 0.0, "title": "Hello", "url": "https://example.org/hello"}
    assert {item["format"] for item in manifest["transcripts"]} == {"srt", "vtt", "json"}
    feed = feedparser.parse(store.get_bytes("shows/castline-talks/feed.xml"))
    assert [entry.title for entry in feed.entries] == ["Feed flow"]
    guid, length = feed.entries[0].id, int(feed.entries[0].enclosures[0].length)
    assert length == manifest["files"][0]["bytes"]

    from dataclasses import replace

    run_render(replace(options, meta=("title=Feed flow, retitled",)))
    again = json.loads(store.get_bytes("feed-flow/manifest.json"))
    assert again["render"]["chunks_rendered"] == 0 and again["release"] != manifest["release"]
    feed = feedparser.parse(store.get_bytes("shows/castline-talks/feed.xml"))
    assert [(entry.title, entry.id) for entry in feed.entries] == [("Feed flow, retitled", guid)]
    assert int(feed.entries[0].enclosures[0].length) == again["files"][0]["bytes"]
