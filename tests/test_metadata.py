"""Episode metadata from scripts and --meta options: validated at the edge, errors name file/line/field."""

from __future__ import annotations

import io
import warnings

import pytest
from PIL import Image
from yaml import compose

from castline.core.errors import ScriptError
from castline.delivery.metadata import (ChapterLink, EpisodeMetadata, MetadataWarning, Person, chapter_link_from_node,
                                        metadata_from_options, metadata_from_script)

SCRIPT = """\
episode:
  id: ep-3
  title: "  The   third  one "
  show: show.yaml
  author: Ada Author
  description: |
    Two lines
    of description.
  number: 3
  season: 1
  publish_date: 2026-12-03
  cover: art/cover.png
  explicit: false
  copyright: © 2026 Ada
  people:
    - name: Ada
      role: Host
    - name: Joe
      role: guest
cast:
  ada: piper-joe
turns:
  - speaker: ada
    text: Hello.
"""


def _png(path, width, height=None, kind="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height or width), (0, 90, 200)).save(buffer, kind)
    path.write_bytes(buffer.getvalue())


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "show.yaml").write_text("id: s\n")
    _png(tmp_path / "art" / "cover.png", 1400)
    return tmp_path


def test_a_full_episode_block(folder):
    script = folder / "ep.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta = metadata_from_script(SCRIPT, str(script))
    assert meta.title == "The third one"
    assert meta.show == str(folder / "show.yaml")
    assert meta.description == "Two lines\nof description."
    assert (meta.number, meta.season, meta.explicit) == (3, 1, False)
    assert meta.publish_date == "2026-12-03"
    assert meta.publish_datetime().isoformat() == "2026-12-03T00:00:00+00:00"
    assert meta.cover.mime == "image/png" and (meta.cover.width, meta.cover.height) == (1400, 1400)
    assert len(meta.cover.sha256) == 64
    assert meta.people == (Person("Ada", "host"), Person("Joe", "guest"))
    assert meta.to_manifest()["people"][1] == {"name": "Joe", "role": "guest"}


@pytest.mark.parametrize("line, replacement, where, message", [
    ("  number: 3", "  number: three", ":9: episode.number:", "whole number"),
    ("  number: 3", "  number: 0", ":9: episode.number:", "whole number"),
    ("  season: 1", "  season: -1", ":10: episode.season:", "whole number"),
    ("  publish_date: 2026-12-03", "  publish_date: 03/12/2026", ":11: episode.publish_date:", "ISO 8601"),
    ("  publish_date: 2026-12-03", "  publish_date: 2026-13-03", ":11: episode.publish_date:", "ISO 8601"),
    ("  cover: art/cover.png", "  cover: art/missing.png", ":12: episode.cover:", "not found"),
    ("  explicit: false", "  explicit: sometimes", ":13: episode.explicit:", "true or false"),
    ("  show: show.yaml", "  show: nowhere.yaml", ":4: episode.show:", "not found"),
    ("      role: guest", "      role: [a]", ":19: episode.people[1].role:", "must be text"),
    ("    - name: Joe", "    - nom: Joe", ":18: episode.people[1].nom:", "unknown key"),
    ("  title: \"  The   third  one \"", "  title: ''", ":3: episode.title:", "is empty"),
])
def test_errors_name_file_line_and_field(folder, line, replacement, where, message):
    script = folder / "ep.yaml"
    with pytest.raises(ScriptError) as error:
        metadata_from_script(SCRIPT.replace(line, replacement), str(script))
    text = str(error.value)
    assert f"{script}{where}" in text and message in text
    assert "\n" not in text


def test_cover_shape_warns_and_format_fails(folder):
    script = folder / "ep.yaml"
    _png(folder / "art" / "cover.png", 1400, 1000)
    with pytest.warns(MetadataWarning, match="1400x1000"):
        metadata_from_script(SCRIPT, str(script))
    _png(folder / "art" / "cover.png", 600)
    with pytest.warns(MetadataWarning, match="600x600"):
        metadata_from_script(SCRIPT, str(script))
    _png(folder / "art" / "cover.png", 1400, kind="GIF")
    with pytest.raises(ScriptError, match=r"ep.yaml:12: episode.cover: cover .* is GIF; use JPEG or PNG"):
        metadata_from_script(SCRIPT, str(script))


def test_meta_options_parse_and_override(folder):
    base = metadata_from_script(SCRIPT, str(folder / "ep.yaml"))
    override = metadata_from_options(["title=New title", "number=4", "explicit=yes", "person=Zoe:guest",
                                      "publish_date=2026-12-04T08:00:00Z"], folder)
    merged = base.merged(override)
    assert (merged.title, merged.number, merged.explicit) == ("New title", 4, True)
    assert merged.people == (Person("Zoe", "guest"),)
    assert merged.author == "Ada Author" and merged.season == 1
    assert merged.publish_datetime().hour == 8
    with pytest.raises(ScriptError, match=r"--meta number: must be a whole number"):
        metadata_from_options(["number=x"])
    with pytest.raises(ScriptError, match="unknown key 'titel'"):
        metadata_from_options(["titel=x"])
    with pytest.raises(ScriptError, match="KEY=VALUE"):
        metadata_from_options(["title"])
    assert metadata_from_options([]) == EpisodeMetadata()


def test_scripts_without_metadata_and_chapter_links(tmp_path):
    assert metadata_from_script("cast: {a: b}\nturns: []\n", str(tmp_path / "x.yaml")) == EpisodeMetadata()
    node = compose("chapter: Intro\nurl: https://example.org/a\nimage: https://example.org/a.png\n")
    assert chapter_link_from_node(node, "x.yaml", "turns[0]") == ChapterLink("https://example.org/a",
                                                                            "https://example.org/a.png")
    with pytest.raises(ScriptError, match=r"x.yaml:2: turns\[0\].url: .* must be an http\(s\) URL"):
        chapter_link_from_node(compose("chapter: Intro\nurl: ftp://x\n"), "x.yaml", "turns[0]")


def test_the_script_parser_leaves_metadata_to_delivery_and_keeps_chapter_links(folder):
    from castline.script.yaml_format import parse_yaml

    text = SCRIPT.replace("turns:\n", "turns:\n  - chapter: Intro\n    url: https://example.org/intro\n"
                                      "    image: https://example.org/intro.jpg\n")
    parsed = parse_yaml(text, "ep.yaml")
    assert parsed.title == "The third one"
    assert (parsed.chapters[0].url, parsed.chapters[0].image) == ("https://example.org/intro",
                                                                  "https://example.org/intro.jpg")
    with pytest.raises(ScriptError, match=r"ep.yaml:24: turns\[0\].url: 'url' goes beside a 'chapter'"):
        parse_yaml(SCRIPT.replace("turns:\n", "turns:\n  - pause_ms: 10\n    url: https://x.org\n"), "ep.yaml")
    with pytest.raises(ScriptError, match=r"ep.yaml:24: turns\[0\].image: must be an http\(s\) URL"):
        parse_yaml(SCRIPT.replace("turns:\n", "turns:\n  - chapter: A\n    image: a.jpg\n"), "ep.yaml")
