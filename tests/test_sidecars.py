"""Podcasting 2.0 sidecars (chapters.json 1.2.0, transcript.json 1.0.0) and subtitle line limits."""

from __future__ import annotations

import json
import re

from castline.delivery.sidecars import ChapterEntry, chapters_json, transcript_json
from castline.delivery.subtitles import SRT_LINE_CHARS, VTT_LINE_CHARS, Cue, to_srt, to_vtt

RATE = 24_000
LONG = ("This is a rather long sentence that a narrator reads in one breath, with commas, clauses and "
        "a supercalifragilisticexpialidociousness-sized word that cannot be broken at a space at all.")


def test_chapters_json():
    data = json.loads(chapters_json([
        ChapterEntry("Intro", 0),
        ChapterEntry("Part two", 36_012, url="https://example.org/2", image="https://example.org/2.jpg"),
        ChapterEntry("End", 72_000, end_sample=96_000),
    ], RATE))
    assert data["version"] == "1.2.0"
    assert data["chapters"][0] == {"startTime": 0.0, "title": "Intro"}
    assert data["chapters"][1] == {"startTime": 1.501, "title": "Part two", "img": "https://example.org/2.jpg",
                                   "url": "https://example.org/2"}
    assert data["chapters"][2] == {"startTime": 3.0, "title": "End", "endTime": 4.0}


def test_transcript_json():
    data = json.loads(transcript_json([Cue(0, 12_000, "Ada", "Hello <there> & you."),
                                       Cue(12_000, 60_000, "Joe", "Hi.", False)], RATE))
    assert data == {"version": "1.0.0", "segments": [
        {"speaker": "Ada", "startTime": 0.0, "endTime": 0.5, "body": "Hello <there> & you."},
        {"speaker": "Joe", "startTime": 0.5, "endTime": 2.5, "body": "Hi."}]}


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        if lines[0] == "WEBVTT":
            continue
        out.append((lines[1], lines[2:]))
    return out


def _ms(clock: str) -> int:
    hours, minutes, seconds, millis = map(int, re.split(r"[:,.]", clock))
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def test_srt_cues_hold_two_lines_of_32_characters():
    cues = [Cue(0, 10 * RATE, "Harriet", LONG), Cue(10 * RATE, 11 * RATE, "Joe", "Short.", True)]
    blocks = _blocks(to_srt(cues, RATE))
    assert len(blocks) > 3
    for _, lines in blocks:
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= SRT_LINE_CHARS for line in lines)
    # Every word is there, in order, and the speaker leads the turn's first cue only.
    words = " ".join(line for _, lines in blocks for line in lines)
    assert words.startswith("Harriet: This is") and words.count("Harriet:") == 1
    assert words.replace(" ", "").endswith("atall.Joe:Short.")
    # Times tile the original cue: consecutive, starting and ending where it did.
    spans = [tuple(_ms(part) for part in timing.split(" --> ")) for timing, _ in blocks]
    assert spans[0][0] == 0 and spans[-2][1] == 10_000 and spans[-1] == (10_000, 11_000)
    assert all(first[1] == second[0] for first, second in zip(spans, spans[1:]))


def test_vtt_lines_at_most_65_characters_with_voice_spans():
    blocks = _blocks(to_vtt([Cue(0, 10 * RATE, "Harriet", LONG + " & <more>")], RATE))
    assert len(blocks) >= 2
    for _, lines in blocks:
        assert lines[0].startswith("<v Harriet>") and len(lines) <= 2
        for line in lines:
            visible = re.sub(r"^<v [^>]*>", "", line).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
            assert len(visible) <= VTT_LINE_CHARS
