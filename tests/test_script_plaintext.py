"""VibeVoice plain-text scripts, including every script in the shared demo corpus."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from castline.script.load import load_script, slugify_episode_id, is_valid_episode_id

VOICES = ("heart", "joe", "alloy")
PRESETS = frozenset({"podcast", "audiobook"})


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> Path:
    path = shared_dir / "corpus" / "vibevoice-demo" / "scripts"
    if not path.is_dir():
        pytest.skip(f"demo corpus not found at {path}")
    return path


def load(path: Path, **overrides):
    overrides.setdefault("known_voices", VOICES)
    overrides.setdefault("known_presets", PRESETS)
    return load_script(path, **overrides)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


# -- the corpus --------------------------------------------------------------------------

CORPUS_EXPECTED = {
    "1p_Ch2EN.txt": (10, ("1",)),
    "1p_abs.txt": (2, ("1",)),
    "1p_vibevoice.txt": (4, ("1",)),
    "2p_goat.txt": (22, ("1", "2")),
    "2p_music.txt": (14, ("1", "2")),
    "2p_short.txt": (2, ("1", "2")),
    "2p_yayi.txt": (3, ("1", "2")),
    "3p_gpt5.txt": (47, ("1", "2", "3")),
    "4p_climate_45min.txt": (211, ("1", "2", "3", "4")),
    "4p_climate_100min.txt": (363, ("1", "2", "3", "4")),
}


def test_every_corpus_script_parses(corpus):
    scripts = sorted(corpus.glob("*.txt"))
    assert scripts
    for path in scripts:
        episode = load(path)
        assert episode.turns, path
        assert episode.source_format == "plaintext"
        assert is_valid_episode_id(episode.meta.episode_id)
        for turn in episode.turns:
            assert turn.text and turn.text == " ".join(turn.text.split()), (path, turn.index)
        source_lines = path.read_text(encoding="utf-8").split("\n")
        prefixed = [t for t in episode.turns
                    if re.match(r"\s*speaker", source_lines[t.source.line - 1], re.I)]
        assert len(prefixed) in (0, len(episode.turns))


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTED))
def test_corpus_turn_counts_and_speakers(corpus, name):
    episode = load(corpus / name)
    turns, speakers = CORPUS_EXPECTED[name]
    assert len(episode.turns) == turns
    assert tuple(c.speaker for c in episode.cast) == speakers
    assert tuple(c.display_name for c in episode.cast) == tuple(f"Speaker {s}" for s in speakers)
    assert {t.speaker for t in episode.turns} == set(speakers)
    assert [t.index for t in episode.turns] == list(range(turns))


def test_corpus_characters_survive(corpus):
    ch2en = load(corpus / "1p_Ch2EN.txt")
    assert "小菜一碟" in ch2en.turns[1].text
    assert "we’re" in ch2en.turns[3].text and "“你开玩笑吧”" in ch2en.turns[3].text
    goat = load(corpus / "2p_goat.txt")
    assert goat.turns[1].text == (
        "Thanks so much for having me, Linda. You're absolutely right—this question always "
        "brings out some seriously strong feelings.")
    assert goat.turns[2].text.endswith("incredible.")  # trailing space stripped
    assert goat.turns[-1].text == "It sure does. And we were lucky enough to witness all three."
    assert [t.source.line for t in goat.turns[:3]] == [1, 2, 3]


def test_corpus_single_speaker_file_is_paragraphs(corpus):
    episode = load(corpus / "1p_vibevoice.txt")
    assert [t.source.line for t in episode.turns] == [1, 3, 5, 7]
    assert episode.turns[0].text.startswith("Hello and welcome!")
    assert episode.turns[-1].text == "Thank you for listening to this demonstration!"


def test_corpus_long_form_lines_and_cast(corpus):
    episode = load(corpus / "4p_climate_45min.txt", known_voices=("heart", "joe"))
    assert [t.source.line for t in episode.turns[:3]] == [1, 3, 5]
    assert [c.voice for c in episode.cast] == ["heart", "joe", "heart", "joe"]
    assert episode.warnings == (
        f"{corpus / '4p_climate_45min.txt'}: speakers 1 and 3 share voice 'heart'; "
        "speakers 2 and 4 share voice 'joe' (pass --cast to choose)",)
    assert max(len(t.text) for t in episode.turns) > 500


def test_corpus_100_minutes_parses_fast(corpus):
    path = corpus / "4p_climate_100min.txt"
    load(path)
    started = time.perf_counter()
    episode = load(path)
    assert time.perf_counter() - started < 0.5
    assert len(episode.turns) == 363


# -- format rules ------------------------------------------------------------------------

def test_prefix_variants_and_continuations(tmp_path):
    text = ("  SPEAKER 2 : First line\ncontinues here\n\n   and after a blank\n"
            "speaker10：full-width colon\nSpeaker 02: leading zero\n"
            "Speaker 1:\tTab  and   spaces  \n")
    episode = load(write(tmp_path, "variants.txt", text))
    assert [(t.speaker, t.text, t.source.line) for t in episode.turns] == [
        ("2", "First line continues here and after a blank", 1),
        ("10", "full-width colon", 5),
        ("2", "leading zero", 6),
        ("1", "Tab and spaces", 7),
    ]
    assert [c.speaker for c in episode.cast] == ["1", "2", "10"]  # numeric, not string, order


def test_prefix_text_may_start_on_next_line(tmp_path):
    episode = load(write(tmp_path, "next.txt", "Speaker 1:\n  Hello there.\nSpeaker 2: Hi."))
    assert [t.text for t in episode.turns] == ["Hello there.", "Hi."]


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_line_endings(tmp_path, newline):
    text = newline.join(["Speaker 1: One", "", "Speaker 2: Two", "more", "Speaker 1: Three"])
    episode = load(write(tmp_path, "eol.txt", text))
    assert [(t.text, t.source.line) for t in episode.turns] == [
        ("One", 1), ("Two more", 3), ("Three", 5)]


def test_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfSpeaker 1: Hi")
    assert load(path).turns[0].text == "Hi"


def test_single_speaker_paragraphs(tmp_path):
    text = "\n\nFirst paragraph\nwraps here.\n\n\n\nSecond “one” — 中文。\n   \nThird 😀"
    episode = load(write(tmp_path, "solo.txt", text))
    assert [(t.speaker, t.text, t.source.line) for t in episode.turns] == [
        ("1", "First paragraph wraps here.", 3),
        ("1", "Second “one” — 中文。", 8),
        ("1", "Third 😀", 10),
    ]
    assert [(c.speaker, c.voice) for c in episode.cast] == [("1", "heart")]


def test_nbsp_and_ideographic_spaces_collapse(tmp_path):
    episode = load(write(tmp_path, "ws.txt", "Speaker 1: a\u00a0\u00a0b\u3000c\u200bd"))
    assert episode.turns[0].text == "a b c\u200bd"


# -- cast --------------------------------------------------------------------------------

def four_speakers(tmp_path: Path) -> Path:
    text = "".join(f"Speaker {n}: Hi from {n}.\n" for n in (1, 2, 3, 4))
    return write(tmp_path, "four.txt", text)


def test_auto_cast_distinct_then_wraps_with_one_warning(tmp_path):
    path = four_speakers(tmp_path)
    episode = load(path, known_voices=("heart", "joe"))
    assert [c.voice for c in episode.cast] == ["heart", "joe", "heart", "joe"]
    assert episode.warnings == (f"{path}: speakers 1 and 3 share voice 'heart'; speakers 2 and 4 "
                                "share voice 'joe' (pass --cast to choose)",)


def test_enough_voices_no_warning(tmp_path):
    episode = load(four_speakers(tmp_path), known_voices=("a", "b", "c", "d", "e"))
    assert [c.voice for c in episode.cast] == ["a", "b", "c", "d"]
    assert episode.warnings == ()


def test_overrides_are_skipped_by_auto_assignment(tmp_path):
    episode = load(four_speakers(tmp_path), cast={"1": "joe", "3": "heart"})
    assert [c.voice for c in episode.cast] == ["joe", "alloy", "heart", "heart"]
    assert "speakers 3 and 4 share voice 'heart'" in episode.warnings[0]


def test_override_keys_accept_speaker_forms(tmp_path):
    episode = load(four_speakers(tmp_path), cast={"01": "alloy", "Speaker 2": "joe"})
    assert [c.voice for c in episode.cast][:2] == ["alloy", "joe"]


def test_duplicate_known_voices_are_ignored(tmp_path):
    episode = load(four_speakers(tmp_path), known_voices=("heart", "heart", "joe"))
    assert [c.voice for c in episode.cast] == ["heart", "joe", "heart", "joe"]


# -- metadata ----------------------------------------------------------------------------

def test_meta_defaults_and_overrides(tmp_path):
    path = write(tmp_path, "My Podcast Ep.01.txt", "Speaker 1: Hi")
    episode = load(path)
    assert episode.meta.episode_id == "my-podcast-ep.01"
    assert (episode.meta.title, episode.meta.language, episode.meta.preset) == (
        "My Podcast Ep.01", "en", "podcast")
    episode = load(path, title="Pilot", language="de", preset="audiobook")
    assert (episode.meta.title, episode.meta.language, episode.meta.preset) == (
        "Pilot", "de", "audiobook")


@pytest.mark.parametrize("stem, expected", [
    ("4p_climate_45min", "4p_climate_45min"),
    ("My Show (Final)!", "my-show-final"),
    ("..hidden", "hidden"),
    ("__init__", "init"),
    ("a..b...c", "a.b.c"),
    ("中文", "episode"),
    ("x" * 150, "x" * 100),
    ("Épisode 2", "episode-2"),
])
def test_slugify_episode_id(stem, expected):
    slug = slugify_episode_id(stem)
    assert slug == expected
    assert is_valid_episode_id(slug)
