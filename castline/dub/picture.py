"""The dubbed video of a programme: every language's published mix and re-timed subtitles muxed
back with the picture (``castline.dub.video``), checked, and published beside the languages:
``<programme>/dubbed.mkv`` (and ``dubbed.mp4`` when asked) and ``<programme>/picture.json``.

Runs once per programme after every language is published; it reads each language's
``mix.wav`` and ``subtitles.srt`` back from the store, so it depends on nothing held in memory.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from castline.core.errors import DubError
from castline.dub.plan import LanguagePlan
from castline.dub.video import (DubTrack, MediaInfo, StreamInfo, iso639_2, mux_dubbed, probe_media,
                                track_title)
from castline.storage import ObjectInfo, open_store

SCHEMA = "castline.dub-picture/1"


@dataclass(frozen=True)
class PictureResult:
    """The published dubbed files, the record describing them, and the worst track-length error."""

    files: tuple[ObjectInfo, ...]
    record: ObjectInfo
    max_duration_error_s: float
    seconds: float


def deliver_picture(plans: Sequence[LanguagePlan], work_dir: str | Path) -> PictureResult:
    """Mux and publish the dubbed video for ``plans`` (one programme, its languages in order:
    the first is the default audio track)."""
    started = time.perf_counter()
    if not plans or plans[0].picture is None:
        raise DubError("no video to dub: pass --video", field="--video")
    options, picture = plans[0].options, plans[0].picture
    store = open_store(options.out)
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    media = probe_media(picture.path)
    published: list[ObjectInfo] = []
    streams: dict[str, list[dict[str, object]]] = {}
    worst = 0.0
    with ExitStack() as stack:
        tracks = []
        for plan in plans:
            audio = stack.enter_context(store.local_copy(f"{plan.prefix}/mix.wav"))
            subtitles = stack.enter_context(store.local_copy(f"{plan.prefix}/subtitles.srt"))
            tracks.append(DubTrack(language=plan.language, audio_path=str(audio), subtitle_path=str(subtitles)))
        for container in options.containers:
            path = folder / f"dubbed-{plans[0].programme}.{container}"
            mux_dubbed(picture.path, tracks, path, keep_original_audio=options.keep_original_audio,
                       audio_codec=options.video_audio_codec, media=media)
            result = probe_media(path)
            table, error = _checked(result, media, plans, options.keep_original_audio, str(path))
            worst = max(worst, error)
            streams[container] = table
            published.append(store.put_file(path, f"{plans[0].programme}/dubbed.{container}"))
    bed = plans[0].background
    record = {
        "schema": SCHEMA,
        "programme": plans[0].programme,
        "video": {"path": picture.path, "sha256": picture.sha256, "codec": picture.video_codec,
                  "width": picture.width, "height": picture.height,
                  "frame_rate": f"{picture.fps_num}/{picture.fps_den}", "frames": picture.frames,
                  "duration_s": round(float(Fraction(picture.frames) * picture.fps_den / picture.fps_num), 6),
                  "copied": True},
        "bed": {"kind": bed.kind if bed else "none",
                "description": bed.description if bed else "no bed: dialogue only (--background none)"},
        "original_audio_kept": options.keep_original_audio,
        "audio_codec": options.video_audio_codec,
        "languages": [{"language": plan.language, "iso639_2": iso639_2(plan.language),
                       "title": track_title(plan.language), "default": position == 0,
                       "manifest": f"{plan.prefix}/manifest.json"} for position, plan in enumerate(plans)],
        "files": [{"key": info.key, "uri": info.uri, "sha256": info.sha256, "bytes": info.bytes,
                   "streams": streams[info.key.rsplit(".", 1)[-1]]} for info in published],
        "max_track_duration_error_s": round(worst, 4),
    }
    info = store.put_bytes((json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
                           f"{plans[0].programme}/picture.json")
    return PictureResult(files=tuple(published), record=info, max_duration_error_s=worst,
                         seconds=time.perf_counter() - started)


def _checked(result: MediaInfo, source: MediaInfo, plans: Sequence[LanguagePlan], original: bool,
             path: str) -> tuple[list[dict[str, object]], float]:
    """The muxed file's streams as a table, after checking what a player will see: the picture
    copied frame for frame, one tagged audio track per language (plus the original), the first
    dub default, and every track's length within one frame of the picture's (where the
    container records per-track lengths: Matroska)."""
    expected_audio = len(plans) + (1 if original else 0)
    if result.frames != source.frames or len(result.audio) != expected_audio:
        raise DubError(f"the muxed file has {result.frames} frames and {len(result.audio)} audio tracks; expected "
                       f"{source.frames} and {expected_audio}", source=path)
    dubs = result.audio[1:] if original else result.audio
    for plan, stream in zip(plans, dubs):
        if stream.language != iso639_2(plan.language):
            raise DubError(f"audio track {stream.index} is tagged '{stream.language}', not "
                           f"'{iso639_2(plan.language)}'", source=path)
    if not dubs[0].default or any(stream.default for stream in result.audio if stream is not dubs[0]):
        raise DubError("the first dub language is not the only default audio track", source=path)
    frame_s = source.frame_s or 0.04
    video_s = source.video_duration_s or 0.0
    worst = 0.0
    for stream in (*result.audio, result.video):
        if stream is not None and stream.duration_s is not None:
            worst = max(worst, abs(stream.duration_s - video_s))
    if worst > frame_s:
        raise DubError(f"a track's length differs from the picture's by {worst:.3f} s (more than one frame)",
                       source=path)
    return [_row(stream) for stream in result.streams], worst


def _row(stream: StreamInfo) -> dict[str, object]:
    return {"index": stream.index, "kind": stream.kind, "codec": stream.codec, "language": stream.language,
            "title": stream.title, "default": stream.default, "duration_s": stream.duration_s}
