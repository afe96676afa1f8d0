"""Chunk planning: sentence splitting, packing, long-sentence cuts and the slicing invariants."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castline.render.chunking import Boundary, Chunk, plan_chunks, split_sentences
from castline.script.load import load_script
from castline.script.model import CastEntry, Episode, EpisodeMeta, SourceRef, Turn


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> Path:
    path = shared_dir / "corpus" / "vibevoice-demo" / "scripts"
    if not path.is_dir():
        pytest.skip(f"demo corpus not found at {path}")
    return path


def episode_of(*texts: str, scenes: tuple[int, ...] = (), pauses: dict[int, int] | None = None
               ) -> Episode:
    pauses = pauses or {}
    turns = tuple(Turn(index=i, speaker=str(i % 2 + 1), text=text, source=SourceRef("t.txt", i + 1),
                       pause_before_ms=pauses.get(i), scene_break_before=i in scenes)
                  for i, text in enumerate(texts))
    return Episode(meta=EpisodeMeta("t", "t"), cast=(CastEntry("1", "heart", "Speaker 1"),
                                                     CastEntry("2", "joe", "Speaker 2")),
                   turns=turns)


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def check_invariants(episode: Episode, chunks: tuple[Chunk, ...], max_chars: int) -> None:
    """Nothing dropped, duplicated or reordered; every chunk an exact, trimmed, bounded slice."""
    assert [c.index for c in chunks] == list(range(len(chunks)))
    by_turn: dict[int, list[Chunk]] = {}
    for chunk in chunks:
        by_turn.setdefault(chunk.turn, []).append(chunk)
    assert list(by_turn) == sorted(by_turn)
    for turn in episode.turns:
        mine = by_turn.get(turn.index, [])
        if not turn.text.strip():
            assert not mine
            continue
        assert mine, turn
        sentence_starts = {start for start, _ in split_sentences(turn.text)}
        cursor = 0
        for position, chunk in enumerate(mine):
            assert chunk.position == position and chunk.speaker == turn.speaker
            assert chunk.text == turn.text[chunk.char_start:chunk.char_end]
            assert chunk.text.strip() == chunk.text and chunk.text
            assert len(chunk.text) <= max_chars
            assert chunk.char_start >= cursor
            assert turn.text[cursor:chunk.char_start].strip() == ""
            cursor = chunk.char_end
            if position == 0:
                expected = (Boundary.START if chunk.index == 0 else
                            Boundary.SCENE if turn.scene_break_before else Boundary.TURN)
                assert chunk.boundary == expected
                assert chunk.pause_before_ms == turn.pause_before_ms
            else:
                assert chunk.boundary in (Boundary.SENTENCE, Boundary.SPLIT)
                assert chunk.pause_before_ms is None
                starts_sentence = chunk.char_start in sentence_starts
                assert starts_sentence == (chunk.boundary is Boundary.SENTENCE)
        assert turn.text[cursor:].strip() == ""


# -- sentence splitting ------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("One. Two! Three? Four… Five... Six", ["One.", "Two!", "Three?", "Four…", "Five...", "Six"]),
    ('He said "Stop." Then left. (Really.) Yes?!  "Sure!" Ok.',
     ['He said "Stop."', "Then left.", "(Really.)", "Yes?!", '"Sure!"', "Ok."]),
    ("Ask Mr. Smith and Mrs. Jones. Dr. Who met Prof. X at St. Paul's.",
     ["Ask Mr. Smith and Mrs. Jones.", "Dr. Who met Prof. X at St. Paul's."]),
    ("Apples vs. pears, e.g. Gala, i.e. sweet etc. Done.",
     ["Apples vs. pears, e.g. Gala, i.e. sweet etc. Done."]),
    ("J. R. R. Tolkien wrote it. Next.", ["J. R. R. Tolkien wrote it.", "Next."]),
    ("It costs 3.5 dollars. Or 1,250.75 in total.",
     ["It costs 3.5 dollars.", "Or 1,250.75 in total."]),
    ("Wait... what? no. Yes.", ["Wait... what? no.", "Yes."]),
    ('"Really?" she asked. He nodded.', ['"Really?" she asked.', "He nodded."]),
    ("你好。我很好！真的吗？是的", ["你好。", "我很好！", "真的吗？", "是的"]),
    ("「好。」他说。", ["「好。」", "他说。"]),
    ("泡面你搁这儿呢! 虽然我不知道!我来了", ["泡面你搁这儿呢!", "虽然我不知道!", "我来了"]),
    ("Version 2.0 is out.It works.", ["Version 2.0 is out.It works."]),
    ("  padded.   Both sides.  ", ["padded.", "Both sides."]),
    ("", []),
    ("   ", []),
    ("...", ["..."]),
])
def test_split_sentences(text, expected):
    assert sentences(text) == expected


# -- packing and boundaries --------------------------------------------------------------

def test_packs_sentences_greedily_within_a_turn():
    text = "Aa aa. Bb bb. Cc cc. Dd dd."  # four 6-char sentences
    chunks = plan_chunks(episode_of(text), max_chars=40, target_chars=13)
    assert [c.text for c in chunks] == ["Aa aa. Bb bb.", "Cc cc. Dd dd."]
    assert [c.boundary for c in chunks] == [Boundary.START, Boundary.SENTENCE]


def test_never_packs_across_turns_and_marks_boundaries():
    episode = episode_of("One. Two.", "Three.", "Four.", scenes=(1, 2), pauses={0: 100, 2: 700})
    chunks = plan_chunks(episode, max_chars=100)
    assert [(c.text, c.turn, c.boundary, c.pause_before_ms) for c in chunks] == [
        ("One. Two.", 0, Boundary.START, 100),
        ("Three.", 1, Boundary.SCENE, None),
        ("Four.", 2, Boundary.SCENE, 700),
    ]
    chunks = plan_chunks(episode_of("One. Two.", "Three."), max_chars=5)
    assert [(c.text, c.boundary, c.position) for c in chunks] == [
        ("One.", Boundary.START, 0), ("Two.", Boundary.SENTENCE, 1), ("Three", Boundary.TURN, 0),
        (".", Boundary.SPLIT, 1)]


def test_pause_only_on_first_chunk_of_turn():
    chunks = plan_chunks(episode_of("x", "First one. Second one.", pauses={1: 300}), max_chars=12)
    assert [c.pause_before_ms for c in chunks] == [None, 300, None]


def test_long_sentence_cut_at_clause_punctuation():
    text = ("This sentence runs on, and on for a while; then it continues: still going — "
            "until the very end arrives here.")
    chunks = plan_chunks(episode_of(text), max_chars=40)
    assert [c.text for c in chunks] == [
        "This sentence runs on,", "and on for a while; then it continues:", "still going —",
        "until the very end arrives here."]
    assert [c.boundary for c in chunks] == [Boundary.START] + [Boundary.SPLIT] * 3


def test_long_sentence_prefers_clause_over_space_when_not_tiny():
    text = "alpha beta gamma delta, epsilon zeta eta theta iota kappa lambda."
    chunks = plan_chunks(episode_of(text), max_chars=30)
    assert chunks[0].text == "alpha beta gamma delta,"


def test_long_sentence_cut_at_last_space():
    text = "word " * 20 + "end."
    chunks = plan_chunks(episode_of(text.strip()), max_chars=22)
    assert [c.text for c in chunks][:2] == ["word word word word", "word word word word"]


def test_cjk_long_sentence_cut_at_cjk_clause_or_hard():
    text = "这是一个很长的句子，没有空格也没有句号" + "字" * 30 + "。"
    chunks = plan_chunks(episode_of(text), max_chars=20)
    assert chunks[0].text == "这是一个很长的句子，"
    assert all(len(c.text) <= 20 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_hard_cut_keeps_combining_marks_and_zwj_sequences():
    text = "e\u0301" * 30
    chunks = plan_chunks(episode_of(text), max_chars=21)
    assert all(not unicodedata.combining(c.text[0]) for c in chunks)
    family = "👨\u200d👩\u200d👧" * 10
    chunks = plan_chunks(episode_of(family), max_chars=20)
    assert all(c.text[0] != "\u200d" and c.text[-1] != "\u200d" for c in chunks)
    assert "".join(c.text for c in chunks) == family


def test_target_smaller_than_max():
    text = "A fairly long sentence of some forty-six chars. Short one. Another short."
    chunks = plan_chunks(episode_of(text), max_chars=60, target_chars=30)
    assert [c.text for c in chunks] == [
        "A fairly long sentence of some forty-six chars.", "Short one. Another short."]


def test_empty_turn_text_gives_no_chunks():
    chunks = plan_chunks(episode_of("   ", "Hi."), max_chars=20)
    assert [(c.turn, c.boundary) for c in chunks] == [(1, Boundary.START)]


@pytest.mark.parametrize("max_chars, target", [(0, None), (10, 11), (10, 0)])
def test_bad_budgets(max_chars, target):
    with pytest.raises(ValueError):
        plan_chunks(episode_of("Hi."), max_chars=max_chars, target_chars=target)


# -- properties --------------------------------------------------------------------------

_PIECES = st.sampled_from([
    "word", "Hello", "a", "I", "OK", "Mr.", "Dr.", "e.g.", "i.e.", "etc.", "J.", "U.S.", "vs.",
    "3.5", "1,250.75", ".", "!", "?", "…", "...", "?!", "。", "！", "？", ",", ";", ":", "—", "–",
    "，", "、", "；", "：", '"', "'", "”", "’", ")", "]", "»", "「", "」", "你好", "中文字符",
    "x" * 45, "超长的中文句子没有空格" * 4, "e\u0301", "😀", "👨\u200d👩\u200d👧", "\u200b",
    " ", " ", " ", "  ", "\n", "\t", "\u3000", "\u00a0",
])
_TEXTS = st.lists(_PIECES, max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_TEXTS, min_size=1, max_size=4), max_chars=st.integers(20, 120),
       data=st.data(), scenes=st.sets(st.integers(0, 3)))
def test_plan_invariants(texts, max_chars, data, scenes):
    target = data.draw(st.one_of(st.none(), st.integers(20, max_chars)))
    episode = episode_of(*texts, scenes=tuple(scenes))
    chunks = plan_chunks(episode, max_chars=max_chars, target_chars=target)
    check_invariants(episode, chunks, max_chars)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS | st.text(max_size=200))
def test_sentence_spans_cover_text_in_order(text):
    cursor = 0
    for start, end in split_sentences(text):
        assert cursor <= start < end <= len(text)
        assert text[cursor:start].strip() == ""
        assert text[start:end] == text[start:end].strip()
        cursor = end
    assert text[cursor:].strip() == ""


# -- corpus ------------------------------------------------------------------------------

@pytest.mark.parametrize("max_chars, target", [(300, 200), (120, None), (20, None)])
def test_corpus_invariants(corpus, max_chars, target):
    for path in sorted(corpus.glob("*.txt")):
        episode = load_script(path, known_voices=("heart", "joe"), known_presets={"podcast"})
        check_invariants(episode, plan_chunks(episode, max_chars=max_chars, target_chars=target),
                         max_chars)


def test_corpus_100_minutes_plans_fast(corpus):
    episode = load_script(corpus / "4p_climate_100min.txt", known_voices=("heart", "joe"),
                          known_presets={"podcast"})
    started = time.perf_counter()
    chunks = plan_chunks(episode, max_chars=250, target_chars=180)
    assert time.perf_counter() - started < 0.5
    assert len(chunks) > len(episode.turns)
    assert sum(c.boundary is Boundary.TURN for c in chunks) == len(episode.turns) - 1
