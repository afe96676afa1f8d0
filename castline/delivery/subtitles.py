"""SRT and WebVTT transcripts from real sample timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


def to_srt(cues: Sequence[Cue], sample_rate: int) -> str:
    """SubRip text; the speaker's name leads the first cue of each turn."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        text = f"{cue.speaker}: {cue.text}" if cue.first_of_turn else cue.text
        blocks.append(f"{number}\n{_clock(cue.start_sample, sample_rate, ',')} --> "
                      f"{_clock(cue.end_sample, sample_rate, ',')}\n{_escape_srt(text)}\n")
    return "\n".join(blocks)


def to_vtt(cues: Sequence[Cue], sample_rate: int) -> str:
    """WebVTT with a voice span (``<v Speaker>``) on every cue."""
    blocks = ["WEBVTT\n"]
    for number, cue in enumerate(cues, start=1):
        speaker = cue.speaker.replace(">", "").replace("&", "&amp;")
        blocks.append(f"{number}\n{_clock(cue.start_sample, sample_rate, '.')} --> "
                      f"{_clock(cue.end_sample, sample_rate, '.')}\n<v {speaker}>{_escape_vtt(cue.text)}\n")
    return "\n".join(blocks)


def _escape_srt(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _escape_vtt(text: str) -> str:
    return _escape_srt(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("-->", "--&gt;")
