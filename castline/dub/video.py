"""Video in and out for dubbing: probe a programme, demux its audio, mux the dubbed video.

All through ffmpeg (imageio-ffmpeg's binary, as ``castline.audio.encode.ffmpeg_exe``). That
build ships no ffprobe, so ``probe_media`` parses what ``ffmpeg -i`` prints, and counts the video
frames with a stream copy to the null muxer (``-progress``), which reads packets without decoding.

The dubbed file (``dubbed.mkv``, or ``.mp4``) keeps the picture as it is (``-c:v copy``), then:
the original programme audio as the first audio track when asked, one audio track per dub
language (AAC or Opus, tagged with its ISO 639-2 code and a title such as "Español (dub)"),
and one subtitle track per language. The first dub language is the default audio track. Every
audio track is padded or trimmed to the video's duration in samples (``apad`` + ``atrim``), so it
lasts the picture's duration to within one frame once encoded (the codec's frame granularity:
1024 samples for AAC, 960 for Opus, about 21 ms at 48 kHz).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from castline.audio.encode import ffmpeg_exe
from castline.core.errors import DubError

VIDEO_SAMPLE_RATE = 48_000
"""The mix rate for picture: a programme's audio is demuxed at 48 kHz (higher rates are kept)."""
AUDIO_CODECS = {"aac": ("aac", "-b:a", "192k"), "opus": ("libopus", "-b:a", "128k")}
"""Dub track encoders: AAC-LC 192 kb/s (plays everywhere, MP4 and MKV) or Opus 128 kb/s."""
CONTAINERS = ("mkv", "mp4")
SUBTITLE_CODECS = {"mkv": "srt", "mp4": "mov_text"}

_STREAM = re.compile(r"^\s*Stream #(\d+):(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (Video|Audio|Subtitle|Data|Attachment): "
                     r"(.*)$")
_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (fps|tbr)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_RATE = re.compile(r"(\d+) Hz")
_TAG = re.compile(r"^\s{4,}(\w+)\s*: (.*)$")
_STREAM_START = re.compile(r", start (-?\d+(?:\.\d+)?)")
_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class StreamInfo:
    """One stream as ``ffmpeg -i`` reports it. ``index``: its number in the file; ``kind``:
    video, audio or subtitle; ``language``: the tag in brackets (``und`` when untagged);
    ``default``: its disposition; ``title``: its title tag; ``duration_s``: the per-stream
    ``DURATION`` tag Matroska files carry (None elsewhere); ``start_s``: when its first packet
    plays, in seconds from the file's start (``start 0.500000``; 0 when ffmpeg prints none)."""

    index: int
    kind: str
    codec: str
    language: str
    default: bool
    title: str
    sample_rate: int | None = None
    channels: str | None = None
    duration_s: float | None = None
    start_s: float = 0.0


@dataclass(frozen=True)
class MediaInfo:
    """A programme file: its container duration, streams, and for its first video stream the
    frame rate (exact fraction: 29.97 → 30000/1001) and frame count (counted, not estimated).
    ``video_duration_s`` is frames / rate when both are known, else the container duration."""

    path: str
    duration_s: float | None
    streams: tuple[StreamInfo, ...]
    width: int | None = None
    height: int | None = None
    frame_rate: Fraction | None = None
    frames: int | None = None

    @property
    def video(self) -> StreamInfo | None:
        return next((stream for stream in self.streams if stream.kind == "video"), None)

    @property
    def audio(self) -> tuple[StreamInfo, ...]:
        return tuple(stream for stream in self.streams if stream.kind == "audio")

    @property
    def subtitles(self) -> tuple[StreamInfo, ...]:
        return tuple(stream for stream in self.streams if stream.kind == "subtitle")

    @property
    def frame_s(self) -> float | None:
        return None if self.frame_rate is None else float(1 / self.frame_rate)

    @property
    def video_duration_s(self) -> float | None:
        if self.frames is not None and self.frame_rate:
            return float(self.frames / self.frame_rate)
        return self.duration_s

    def duration_samples(self, sample_rate: int) -> int:
        """The picture's duration in whole samples at ``sample_rate`` (rounded half up)."""
        if self.frames is not None and self.frame_rate:
            exact = Fraction(self.frames) / self.frame_rate * sample_rate
            return int(exact + Fraction(1, 2))
        if self.duration_s is None:
            raise DubError("ffmpeg reports no duration for this file", source=self.path)
        return int(self.duration_s * sample_rate + 0.5)


@dataclass(frozen=True)
class DubTrack:
    """One language for the dubbed video: its mastered mix (any audio file ffmpeg reads), its
    re-timed subtitles (SRT), and its language code (``es``, ``pt-br``)."""

    language: str
    audio_path: str
    subtitle_path: str | None = None


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace")


def probe_media(path: str | Path, count_frames: bool = True) -> MediaInfo:
    """Streams, durations, frame rate and (``count_frames``) the exact number of video frames."""
    source = str(path)
    if not Path(source).is_file():
        raise DubError("file not found", source=source)
    completed = _run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", source])
    text = completed.stderr
    if "Input #0" not in text:
        last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "unreadable")
        raise DubError(f"ffmpeg cannot read this file: {last.strip()[:160]}", source=source)
    info = parse_ffmpeg_info(text, source)
    if count_frames and info.video is not None:
        info = MediaInfo(path=info.path, duration_s=info.duration_s, streams=info.streams, width=info.width,
                         height=info.height, frame_rate=info.frame_rate, frames=_count_frames(source))
    return info


def parse_ffmpeg_info(text: str, source: str = "<ffmpeg>") -> MediaInfo:
    """Parse the ``Input #0`` part of ``ffmpeg -i`` output (no frame count)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Input #0")), 0)
    end = next((i for i, line in enumerate(lines[start + 1:], start + 1)
                if line.startswith(("Input #1", "Output #", "Stream mapping", "At least one output"))), len(lines))
    duration_s = None
    streams: list[StreamInfo] = []
    width = height = None
    frame_rate = None
    current: dict | None = None
    for line in lines[start:end]:
        match = _DURATION.search(line)
        if match and duration_s is None and "Duration:" in line.split(",")[0]:
            hours, minutes, seconds = match.groups()
            duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            continue
        match = _STREAM.match(line)
        if match:
            if current is not None:
                streams.append(StreamInfo(**current))
            _, index, language, kind, rest = match.groups()
            codec = rest.split(",")[0].split(" ")[0]
            current = {"index": int(index), "kind": kind.lower(), "codec": codec, "language": language or "und",
                       "default": "(default)" in rest, "title": ""}
            start = _STREAM_START.search(rest)
            if start:
                current["start_s"] = float(start.group(1))
            if kind == "Audio":
                rate = _RATE.search(rest)
                current["sample_rate"] = int(rate.group(1)) if rate else None
                parts = [part.strip() for part in rest.split(",")]
                current["channels"] = parts[2] if len(parts) > 2 else None
            if kind == "Video" and frame_rate is None:
                size = _SIZE.search(rest)
                if size:
                    width, height = int(size.group(1)), int(size.group(2))
                frame_rate = _frame_rate(rest)
            continue
        match = _TAG.match(line)
        if match and current is not None:
            key, value = match.group(1).lower(), match.group(2).strip()
            if key == "title" or (key == "handler_name" and not current["title"]
                                  and not value.endswith("Handler")):
                current["title"] = value
            elif key == "duration":
                clock = _CLOCK.match(value)
                if clock:
                    current["duration_s"] = (int(clock.group(1)) * 3600 + int(clock.group(2)) * 60
                                             + float(clock.group(3)))
            elif key == "language" and current["language"] == "und":
                current["language"] = value
    if current is not None:
        streams.append(StreamInfo(**current))
    return MediaInfo(path=source, duration_s=duration_s, streams=tuple(streams), width=width, height=height,
                     frame_rate=frame_rate)


def _frame_rate(description: str) -> Fraction | None:
    """``25 fps`` → 25; ``29.97 fps`` → 30000/1001 (NTSC rates are printed rounded)."""
    found = {kind: (float(value) * (1000 if k else 1)) for value, k, kind in _FPS.findall(description)}
    value = found.get("fps") or found.get("tbr")
    if not value:
        return None
    for base in (24, 30, 48, 60, 120):
        if abs(value - base * 1000 / 1001) < 0.006:
            return Fraction(base * 1000, 1001)
    return Fraction(value).limit_denominator(1001)


def _count_frames(source: str) -> int | None:
    completed = _run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", source, "-map", "0:v:0",
                      "-c", "copy", "-f", "null", "-", "-progress", "pipe:1"])
    counts = re.findall(r"^frame=(\d+)$", completed.stdout, re.MULTILINE)
    return int(counts[-1]) if completed.returncode == 0 and counts else None


def demux_audio(source: str | Path, out_path: str | Path, *, duration_samples: int | None = None,
                sample_rate: int | None = None, stream: int = 0) -> Path:
    """The programme's ``stream``-th audio track as a float WAV at ``sample_rate`` (default: the
    track's own rate raised to at least 48 kHz: the bed is never resampled down), padded with
    silence or trimmed to ``duration_samples`` when given (the picture's duration)."""
    info = probe_media(source, count_frames=False)
    if len(info.audio) <= stream:
        raise DubError(f"the file has no audio track {stream + 1} to use as the bed (it has {len(info.audio)}); "
                       f"pass --background FILE or --background none", source=str(source), field="--video")
    rate = sample_rate or max(VIDEO_SAMPLE_RATE, info.audio[stream].sample_rate or VIDEO_SAMPLE_RATE)
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
               "-map", f"0:a:{stream}", "-vn", "-sn", "-dn", "-map_metadata", "-1",
               "-af", _fit_filter(rate, duration_samples)]
    command += ["-c:a", "pcm_f32le", str(out_path)]
    completed = _run(command)
    if completed.returncode != 0:
        raise DubError(f"ffmpeg could not demux the audio: {completed.stderr.strip()[-200:]}", source=str(source))
    return Path(out_path)


def _fit_filter(sample_rate: int, samples: int | None) -> str:
    # Resample first (`-ar` would resample after the filters, and atrim counts input samples),
    # then pad with silence to at least `samples` and cut at exactly `samples`. `first_pts=0` puts
    # the first sample at the programme's time zero: an audio stream that starts after the picture
    # (`start 0.500000` in `ffmpeg -i`) gets that much silence in front instead of being pulled
    # early, and samples before zero (encoder delay) are dropped.
    chain = f"aresample={sample_rate}:first_pts=0"
    return chain if samples is None else f"{chain},apad=whole_len={samples},atrim=end_sample={samples}"


def iso639_2(language: str) -> str:
    """The ISO 639-2 (bibliographic, as Matroska wants) code of ``es``/``pt-BR``/``deu``: spa, por, ger."""
    import pycountry

    primary = language.split("-")[0].split("_")[0].lower()
    record = (pycountry.languages.get(alpha_2=primary) if len(primary) == 2 else
              pycountry.languages.get(alpha_3=primary))
    if record is None and len(primary) == 3:
        record = next((item for item in pycountry.languages if getattr(item, "bibliographic", None) == primary), None)
    if record is None:
        return "und"
    return getattr(record, "bibliographic", None) or record.alpha_3


_ENDONYMS = {
    "ar": "العربية", "bg": "Български", "ca": "Català", "cs": "Čeština", "da": "Dansk", "de": "Deutsch",
    "el": "Ελληνικά", "en": "English", "es": "Español", "et": "Eesti", "eu": "Euskara", "fi": "Suomi",
    "fr": "Français", "gl": "Galego", "he": "עברית", "hi": "हिन्दी", "hr": "Hrvatski", "hu": "Magyar",
    "id": "Bahasa Indonesia", "it": "Italiano", "ja": "日本語", "ko": "한국어", "lt": "Lietuvių", "lv": "Latviešu",
    "nb": "Norsk bokmål", "nl": "Nederlands", "no": "Norsk", "pl": "Polski", "pt": "Português", "ro": "Română",
    "ru": "Русский", "sk": "Slovenčina", "sl": "Slovenščina", "sr": "Српски", "sv": "Svenska", "th": "ไทย",
    "tr": "Türkçe", "uk": "Українська", "vi": "Tiếng Việt", "zh": "中文",
}
"""Language names in their own language, for track titles (others: the English name)."""


def track_title(language: str, suffix: str = "dub") -> str:
    """``es`` → "Español (dub)"; ``pt-br`` → "Português (BR) (dub)"."""
    import pycountry

    primary, _, region = language.partition("-")
    name = _ENDONYMS.get(primary.lower())
    if name is None:
        record = pycountry.languages.get(alpha_2=primary) if len(primary) == 2 else None
        name = record.name if record is not None else language
    if region:
        name = f"{name} ({region.upper()})"
    return f"{name} ({suffix})" if suffix else name


def mux_dubbed(video: str | Path, tracks: Sequence[DubTrack], out_path: str | Path, *,
               keep_original_audio: bool = False, audio_codec: str = "aac", media: MediaInfo | None = None,
               original_language: str | None = None) -> Path:
    """Write ``out_path`` (.mkv or .mp4): the picture copied, [the original audio], one dub track
    and one subtitle track per language, the first dub language flagged default."""
    if audio_codec not in AUDIO_CODECS:
        raise DubError(f"unknown dub audio codec '{audio_codec}' (known: {', '.join(AUDIO_CODECS)})",
                       field="--audio-codec")
    container = Path(out_path).suffix.lower().lstrip(".")
    if container not in CONTAINERS:
        raise DubError(f"the dubbed video must be .mkv or .mp4, not .{container}", source=str(out_path))
    if not tracks:
        raise DubError("no dub track to mux", source=str(out_path))
    media = media or probe_media(video)
    if media.video is None:
        raise DubError("the programme has no video stream to copy", source=str(video), field="--video")
    if keep_original_audio and not media.audio:
        raise DubError("--keep-original-audio: the programme has no audio track", source=str(video))
    encoder, *bitrate = AUDIO_CODECS[audio_codec]
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video)]
    for track in tracks:
        command += ["-i", track.audio_path]
    subtitled = [(position, track) for position, track in enumerate(tracks) if track.subtitle_path]
    for _, track in subtitled:
        command += ["-i", str(track.subtitle_path)]
    command += ["-map", "0:v:0", "-c:v", "copy", "-map_metadata", "0", "-map_chapters", "0"]
    audio_out = 0
    rate = VIDEO_SAMPLE_RATE
    if keep_original_audio:
        original = media.audio[0]
        original_rate = 48_000 if audio_codec == "opus" else (original.sample_rate or VIDEO_SAMPLE_RATE)
        command += ["-map", "0:a:0", f"-c:a:{audio_out}", encoder, f"-b:a:{audio_out}", bitrate[1],
                    f"-filter:a:{audio_out}", _fit_filter(original_rate, media.duration_samples(original_rate)),
                    f"-metadata:s:a:{audio_out}", f"language={iso639_2(original_language) if original_language else original.language}",
                    *_title(container, f"a:{audio_out}", "Original"), f"-disposition:a:{audio_out}", "0"]
        audio_out += 1
    for position, track in enumerate(tracks):
        command += ["-map", f"{position + 1}:a:0", f"-c:a:{audio_out}", encoder, f"-b:a:{audio_out}", bitrate[1],
                    f"-filter:a:{audio_out}", _fit_filter(rate, media.duration_samples(rate)),
                    f"-metadata:s:a:{audio_out}", f"language={iso639_2(track.language)}",
                    *_title(container, f"a:{audio_out}", track_title(track.language)),
                    f"-disposition:a:{audio_out}", "default" if position == 0 else "0"]
        audio_out += 1
    for number, (position, track) in enumerate(subtitled):
        command += ["-map", f"{len(tracks) + 1 + number}:s:0", f"-c:s:{number}", SUBTITLE_CODECS[container],
                    f"-metadata:s:s:{number}", f"language={iso639_2(track.language)}",
                    *_title(container, f"s:{number}", track_title(track.language, "dub subtitles")),
                    f"-disposition:s:{number}", "0"]
    if container == "mp4":
        command += ["-movflags", "+faststart"]
    command.append(str(out_path))
    completed = _run(command)
    if completed.returncode != 0:
        raise DubError(f"ffmpeg could not mux the dubbed video: {completed.stderr.strip()[-300:]}",
                       source=str(out_path))
    return Path(out_path)


def _title(container: str, stream: str, title: str) -> list[str]:
    # MP4 keeps a track's name in its handler name; Matroska has a title tag.
    key = "handler_name" if container == "mp4" else "title"
    return [f"-metadata:s:{stream}", f"{key}={title}"]


def decode_track(path: str | Path, audio_stream: int, sample_rate: int):
    """The ``audio_stream``-th audio track decoded to float32 mono at ``sample_rate`` (what a
    player plays: encoder delay and padding removed by the demuxer/decoder)."""
    import numpy as np

    completed = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
                                "-map", f"0:a:{audio_stream}", "-ar", str(sample_rate), "-ac", "1", "-f", "f32le",
                                "-"], capture_output=True)
    if completed.returncode != 0:
        raise DubError(f"ffmpeg could not decode audio track {audio_stream}: "
                       f"{completed.stderr.decode(errors='replace').strip()[-200:]}", source=str(path))
    return np.frombuffer(completed.stdout, dtype=np.float32)
