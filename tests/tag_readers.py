"""Read tags, chapters and covers back with ffmpeg (for files mutagen wrote).

imageio-ffmpeg ships ffmpeg only (no ffprobe): tags come from ``ffmpeg -i FILE -f ffmetadata -``,
chapter times from ffmpeg's own listing of the input (``Chapter #0:N: start S, end E``), which
keeps the times as stored; ffmetadata output shifts them by the stream's start time (MP3 priming).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from castline.audio.encode import ffmpeg_exe

_CHAPTER = re.compile(r"Chapter #\d+:\d+: start (-?[\d.]+), end (-?[\d.]+)\n(?:\s+Metadata:\n)?"
                      r"(?:\s+title\s*: (.*)\n)?")


def ffmetadata_tags(path: str | Path, stream: bool = False) -> dict[str, str]:
    """Global tags (or the first audio stream's, e.g. Ogg) as ffmpeg reads them; keys lowercased."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path)]
    if stream:
        command += ["-map_metadata", "0:s:a:0"]
    command += ["-f", "ffmetadata", "-"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    tags: dict[str, str] = {}
    for line in text.split("[CHAPTER]")[0].splitlines()[1:]:
        key, _, value = line.partition("=")
        if key:
            tags[key.lower()] = re.sub(r"\\(.)", r"\1", value)
    return tags


def ffmpeg_chapters(path: str | Path) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, title)`` per chapter, sorted by start."""
    listing = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)], capture_output=True,
                             text=True).stderr
    found = [(float(start), float(end), (title or "").strip()) for start, end, title in _CHAPTER.findall(listing)]
    return sorted(found)


def ffmpeg_cover(path: str | Path, out: str | Path) -> bytes:
    """The attached picture's bytes, copied out by ffmpeg without re-encoding."""
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
                    "-map", "0:v:0", "-c", "copy", "-f", "image2", "-update", "1", str(out)], check=True)
    return Path(out).read_bytes()


def decoded_pcm(path: str | Path, sample_rate: int) -> bytes:
    """The file decoded by ffmpeg to mono float32 at ``sample_rate``."""
    return subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
                           "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"], capture_output=True,
                          check=True).stdout
