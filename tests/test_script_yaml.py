"""YAML scripts: the documented schema, markers, cast and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from castline.script.load import detect_format, load_script
from castline.script.model import Chapter

VOICES = ("heart", "joe", "alloy")
PRESETS = frozenset({"podcast", "audiobook"})

# Kept identical to the example in docs/scripts.md.
README_EXAMPLE = """\
episode:
  id: castline-demo          # optional; default: the file name, slugified
  title: "The Castline Demo" # optional; default: the file name
  language: en               # optional; default: en
  preset: podcast            # optional; default: podcast
cast:
  host: heart                # speaker key -> voice id
  guest: {voice: joe, name: "Sam Guest"}
  narrator:                  # no voice: castline picks an unused one
    name: The Narrator
turns:
  - chapter: "Welcome"       # starts a chapter at the next turn
  - speaker: host
    text: Hello and welcome.
  - speaker: guest
    text: >
      Thanks for having me —
      it’s great to be here.
  - pause_ms: 1200           # extra gap before the next turn
  - scene: "Part two"        # scene break before the next turn
  - speaker: host
    text: Back again.
    pause_before_ms: 300     # adds to any pause_ms markers before it
  - chapter: "Outro"
  - speaker: narrator
    text: "Yes."
"""


def load(path: Path, **overrides):
    overrides.setdefault("known_voices", VOICES)
    overrides.setdefault("known_presets", PRESETS)
    return load_script(path, **overrides)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_readme_example(tmp_path):
    episode = load(write(tmp_path, "demo.yaml", README_EXAMPLE))
    assert episode.source_format == "yaml"
    assert episode.meta.episode_id == "castline-demo"
    assert episode.meta.title == "The Castline Demo"
    assert (episode.meta.language, episode.meta.preset) == ("en", "podcast")
    assert [(c.speaker, c.voice, c.display_name) for c in episode.cast] == [
        ("host", "heart", "host"), ("guest", "joe", "Sam Guest"),
        ("narrator", "alloy", "The Narrator")]
    assert [t.speaker for t in episode.turns] == ["host", "guest", "host", "narrator"]
    assert [t.index for t in episode.turns] == [0, 1, 2, 3]
    assert episode.turns[1].text == "Thanks for having me — it’s great to be here."
    assert [t.source.line for t in episode.turns] == [13, 15, 21, 25]
    assert [t.pause_before_ms for t in episode.turns] == [None, None, 1500, None]
    assert [t.scene_break_before for t in episode.turns] == [False, False, True, False]
    assert episode.chapters == (Chapter("Welcome", 0), Chapter("Outro", 3))
    assert episode.warnings == ()


def test_defaults_from_file_name(tmp_path):
    text = "cast: {a: joe}\nturns: [{speaker: a, text: hi}]\n"
    path = write(tmp_path, "My Show (Final)!.yml", text)
    episode = load(path)
    assert episode.meta.episode_id == "my-show-final"
    assert episode.meta.title == "My Show (Final)!"
    assert (episode.meta.language, episode.meta.preset) == ("en", "podcast")


def test_cli_overrides_win(tmp_path):
    path = write(tmp_path, "demo.yaml", README_EXAMPLE)
    episode = load(path, cast={"host": "alloy"}, preset="audiobook", title="  Other   Title ",
                   language="zh-CN")
    assert episode.voice_for("host") == "alloy"
    # the narrator's automatic voice avoids voices taken by explicit choices
    assert episode.voice_for("narrator") == "heart"
    assert (episode.meta.title, episode.meta.language, episode.meta.preset) == (
        "Other Title", "zh-CN", "audiobook")


def test_cli_override_replaces_unknown_yaml_voice_and_preset(tmp_path):
    text = README_EXAMPLE.replace("host: heart", "host: retired").replace(
        "preset: podcast", "preset: radio")
    episode = load(write(tmp_path, "demo.yaml", text), cast={"host": "heart"}, preset="podcast")
    assert episode.voice_for("host") == "heart"


def test_unused_cast_members_are_allowed_and_left_out(tmp_path):
    text = ("cast:\n  a: joe\n  b: heart\n  c: nope_unused_but_checked\n"
            "turns:\n  - {speaker: a, text: hi}\n")
    path = write(tmp_path, "unused.yaml", text)
    with pytest.raises(Exception, match="unknown voice 'nope_unused_but_checked'"):
        load(path)
    path = write(tmp_path, "unused.yaml", text.replace("nope_unused_but_checked", "alloy"))
    episode = load(path)
    assert [c.speaker for c in episode.cast] == ["a"]


def test_trailing_markers_warn(tmp_path):
    text = ("cast: {a: joe}\nturns:\n  - {speaker: a, text: hi}\n"
            "  - pause_ms: 500\n  - scene:\n  - chapter: Never\n")
    episode = load(write(tmp_path, "tail.yaml", text))
    assert len(episode.turns) == 1 and episode.chapters == ()
    where = tmp_path / "tail.yaml"
    assert episode.warnings == (
        f"{where}:4: turns[1].pause_ms: has no turn after it; ignored",
        f"{where}:5: turns[2].scene: has no turn after it; ignored",
        f"{where}:6: turns[3].chapter: has no turn after it; ignored",
    )


def test_back_to_back_chapters_keep_the_last(tmp_path):
    text = ("cast: {a: joe}\nturns:\n  - chapter: One\n  - chapter: Two\n"
            "  - {speaker: a, text: hi}\n")
    episode = load(write(tmp_path, "chap.yaml", text))
    assert episode.chapters == (Chapter("Two", 0),)
    assert len(episode.warnings) == 1 and "chapter 'One' has no turns" in episode.warnings[0]


def test_pauses_add_up_and_markers_combine(tmp_path):
    text = ("cast: {a: joe}\nturns:\n  - {speaker: a, text: one}\n"
            "  - {pause_ms: 1000, scene: x, chapter: Two}\n  - pause_ms: 500\n"
            "  - {speaker: a, text: two, pause_before_ms: 250}\n"
            "  - {speaker: a, text: three, pause_before_ms: 0}\n")
    episode = load(write(tmp_path, "pause.yaml", text))
    assert [t.pause_before_ms for t in episode.turns] == [None, 1750, 0]
    assert [t.scene_break_before for t in episode.turns] == [False, True, False]
    assert episode.chapters == (Chapter("Two", 1),)


def test_scalars_are_taken_as_written(tmp_path):
    text = ("episode: {id: 2024}\ncast:\n  1: heart\n  2: {name: Two}\nturns:\n"
            "  - {speaker: 1, text: Yes}\n  - {speaker: 2, text: 3.50}\n"
            "  - {speaker: '1', text: 'null'}\n")
    episode = load(write(tmp_path, "raw.yaml", text))
    assert episode.meta.episode_id == "2024"
    assert [(t.speaker, t.text) for t in episode.turns] == [
        ("1", "Yes"), ("2", "3.50"), ("1", "null")]
    assert [(c.speaker, c.voice, c.display_name) for c in episode.cast] == [
        ("1", "heart", "1"), ("2", "joe", "Two")]


def test_text_whitespace_collapsed_other_characters_kept(tmp_path):
    text = ('cast: {a: joe}\nturns:\n  - speaker: a\n    text: |\n      “Quoted”  —  line one\n'
            '        中文，测试。   😀 e\u0301\n')
    episode = load(write(tmp_path, "ws.yaml", text))
    assert episode.turns[0].text == "“Quoted” — line one 中文，测试。 😀 e\u0301"


def test_shared_voice_warning_names_yaml_speakers(tmp_path):
    text = "cast: {a: , b: , c: , d: }\nturns:\n" + "".join(
        f"  - {{speaker: {s}, text: hi}}\n" for s in "abcd")
    episode = load(write(tmp_path, "many.yaml", text), known_voices=("heart", "joe"))
    assert [c.voice for c in episode.cast] == ["heart", "joe", "heart", "joe"]
    assert episode.warnings == (f"{tmp_path / 'many.yaml'}: speakers a and c share voice 'heart'; "
                                "speakers b and d share voice 'joe' (pass --cast to choose)",)


def test_explicit_shared_voice_is_not_warned(tmp_path):
    text = "cast: {a: joe, b: joe}\nturns: [{speaker: a, text: hi}, {speaker: b, text: yo}]\n"
    assert load(write(tmp_path, "same.yaml", text)).warnings == ()


def test_crlf_and_bom_yaml(tmp_path):
    path = tmp_path / "win.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + README_EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    episode = load(path)
    assert [t.source.line for t in episode.turns] == [13, 15, 21, 25]


@pytest.mark.parametrize("name, text, expected", [
    ("script.yaml", "Speaker 1: hi", "yaml"),
    ("script.YML", "x", "yaml"),
    ("script.txt", "turns: []", "plaintext"),
    ("script.md", "episode: {title: x}\nturns:\n  - {speaker: a, text: hi}\n", "yaml"),
    ("script", '{"cast": {"a": "joe"}, "turns": [{"speaker": "a", "text": "hi"}]}', "yaml"),
    ("script.md", "Speaker 1: turns: hi", "plaintext"),
    ("script.script", "Speaker 1: Hello\nSpeaker 2: Hi", "plaintext"),
])
def test_detect_format(name, text, expected):
    assert detect_format(name, text) == expected


def test_non_txt_yaml_content_loads_as_yaml(tmp_path):
    path = write(tmp_path, "show.script", README_EXAMPLE)
    assert load(path).source_format == "yaml"
