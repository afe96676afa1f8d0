"""Podcasting 2.0 sidecar files published beside each episode: chapters and a JSON transcript.

``chapters.json`` follows the JSON chapters format 1.2.0 (``version``, ``chapters`` with
``startTime`` in seconds, ``title``, and ``img`` / ``url`` where given); ``transcript.json``
the JSON transcript format 1.0.0 (``segments`` with ``speaker``, ``startTime``, ``endTime``,
``body``). Times come from integer sample positions, written in seconds to the millisecond.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from castline.core.timebase import samples_to_ms
from castline.delivery.subtitles import Cue

CHAPTERS_VERSION = "1.2.0"
TRANSCRIPT_VERSION = "1.0.0"
CHAPTERS_TYPE = "application/json+chapters"
TRANSCRIPT_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt", "json": "application/json"}
"""MIME type of each transcript format, as ``podcast:transcript`` names them."""


@dataclass(frozen=True)
class ChapterEntry:
    """A chapter at ``start_sample``; ``end_sample`` None lets apps run it to the next one."""

    title: str
    start_sample: int
    end_sample: int | None = None
    url: str | None = None
    image: str | None = None


def _seconds(samples: int, sample_rate: int) -> float:
    return samples_to_ms(samples, sample_rate) / 1000


def chapters_json(chapters: Sequence[ChapterEntry], sample_rate: int) -> bytes:
    """``chapters.json`` (version 1.2.0) for ``chapters`` in programme order."""
    items = []
    for chapter in chapters:
        item: dict[str, object] = {"startTime": _seconds(chapter.start_sample, sample_rate), "title": chapter.title}
        if chapter.end_sample is not None:
            item["endTime"] = _seconds(chapter.end_sample, sample_rate)
        if chapter.image:
            item["img"] = chapter.image
        if chapter.url:
            item["url"] = chapter.url
        items.append(item)
    return _json({"version": CHAPTERS_VERSION, "chapters": items})


def transcript_json(cues: Sequence[Cue], sample_rate: int) -> bytes:
    """``transcript.json`` (version 1.0.0): one segment per cue, the speaker's display name on each."""
    segments = [{"speaker": cue.speaker, "startTime": _seconds(cue.start_sample, sample_rate),
                 "endTime": _seconds(cue.end_sample, sample_rate), "body": cue.text} for cue in cues]
    return _json({"version": TRANSCRIPT_VERSION, "segments": segments})


def _json(data: dict[str, object]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
