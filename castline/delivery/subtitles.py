"""SRT and WebVTT transcripts from real sample timings.

Line limits (Podcasting 2.0 transcript guidance): an SRT cue holds at most 2 lines of 32
characters, a VTT line at most 65 characters (voice spans not counted). A longer text is
split into consecutive cues whose times divide the original cue in proportion to their
characters (whole samples). Dubbing keeps the cue structure of the subtitles it was given
(``line_limits=False``): those cues were authored for the picture and are only re-timed.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Iterator, Sequence

from castline.core.timebase import samples_to_ms


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``[start_sample, end_sample)``, who speaks, and what they say."""

    start_sample: int
    end_sample: int
    speaker: str
    text: str
    first_of_turn: bool = True


def _clock(samples: int, sample_rate: int, separator: str) -> str:
    total_ms = samples_to_ms(samples, sample_rate)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


SRT_LINE_CHARS = 32
VTT_LINE_CHARS = 65
LINES_PER_CUE = 2


def to_srt(cues: Sequence[Cue], sample_rate: int, *, line_limits: bool = True) -> str:
    """SubRip text; the speaker's name leads the first cue of each turn."""
    blocks = []
    pieces = _split(((cue, f"{cue.speaker}: {cue.text}" if cue.first_of_turn else cue.text) for cue in cues),
                    SRT_LINE_CHARS if line_limits else None)
    for number, (start, end, _, lines) in enumerate(pieces, start=1):
        text = "\n".join(_escape_srt(line) for line in lines)
        blocks.append(f"{number}\n{_clock(start, sample_rate, ',')} --> {_clock(end, sample_rate, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(cues: Sequence[Cue], sample_rate: int, *, line_limits: bool = True) -> str:
    """WebVTT with a voice span (``<v Speaker>``) on every cue."""
    blocks = ["WEBVTT\n"]
    for number, (start, end, cue, lines) in enumerate(
            _split(((cue, cue.text) for cue in cues), VTT_LINE_CHARS if line_limits else None), start=1):
        speaker = cue.speaker.replace(">", "").replace("&", "&amp;")
        text = "\n".join(_escape_vtt(line) for line in lines)
        blocks.append(f"{number}\n{_clock(start, sample_rate, '.')} --> {_clock(end, sample_rate, '.')}\n"
                      f"<v {speaker}>{text}\n")
    return "\n".join(blocks)


def _split(items, width: int | None) -> Iterator[tuple[int, int, Cue, list[str]]]:
    """``(start, end, cue, lines)`` pieces of at most ``LINES_PER_CUE`` lines of ``width`` chars
    (``width`` None: each cue whole, as given)."""
    for cue, text in items:
        if width is None:
            yield cue.start_sample, cue.end_sample, cue, [_escape_srt(text)]
            continue
        lines = textwrap.wrap(_escape_srt(text), width, break_on_hyphens=False) or [""]
        groups = [lines[at:at + LINES_PER_CUE] for at in range(0, len(lines), LINES_PER_CUE)]
        weights = [sum(len(line) for line in group) for group in groups]
        total, done = max(1, sum(weights)), 0
        span = cue.end_sample - cue.start_sample
        for group, weight in zip(groups, weights):
            start = cue.start_sample + span * done // total
            done += weight
            end = cue.end_sample if done == sum(weights) else cue.start_sample + span * done // total
            yield start, end, cue, group


def _escape_srt(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _escape_vtt(text: str) -> str:
    return _escape_srt(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("-->", "--&gt;")
