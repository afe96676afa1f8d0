"""Tags, cover and chapters inside each delivered file, in that container's own fields.

mutagen writes ID3v2.4 (MP3), Vorbis comments + PICTURE (FLAC), OpusTags +
METADATA_BLOCK_PICTURE (Opus) and iTunes atoms (M4A/M4B). mutagen cannot write MP4 chapters,
so ffmpeg remuxes M4A/M4B (audio stream copied) with an ffmetadata file — always with
``TIMEBASE=1/1000`` because ffmpeg's default timebase has changed between versions. WAV gets a
RIFF ``LIST``/``INFO`` chunk written here by hand: mutagen's WAVE support writes only an ``id3 ``
chunk, which castline adds too (cover and chapters), while many tools read only ``INFO``.

Only metadata changes: no sample of any file is touched (tests decode tagged and untagged
files and compare their loudness readings).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from castline.audio.encode import ffmpeg_exe
from castline.core.errors import DeliveryError

CTOC_MAX_ENTRIES = 255
"""A CTOC frame counts its children in 8 bits; longer tables are split into nested CTOCs."""
VORBIS_MAX_CHAPTERS = 999
"""Vorbis ``CHAPTERnnn`` comments number chapters with three digits."""
TAGGED_FORMATS = ("mp3", "flac", "opus", "m4a", "m4b", "wav")


@dataclass(frozen=True)
class ChapterTag:
    """A chapter as containers store it: ``[start_ms, end_ms)`` in the programme, a title, a link."""

    title: str
    start_ms: int
    end_ms: int
    url: str | None = None


@dataclass(frozen=True)
class CoverArt:
    """Cover image bytes and their MIME type (``image/jpeg`` or ``image/png``)."""

    data: bytes
    mime: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class TagSet:
    """Everything written into a file; ``None`` fields are left out.

    ``album`` is the show (podcast) or book title; ``track`` the episode number and ``disc``
    the season; ``date`` ISO 8601; ``language`` a BCP 47 tag (ID3 gets its ISO 639-2 form).
    """

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: int | None = None
    disc: int | None = None
    date: str | None = None
    language: str | None = None
    comment: str | None = None
    copyright: str | None = None
    genre: str | None = None
    explicit: bool | None = None
    cover: CoverArt | None = None
    chapters: tuple[ChapterTag, ...] = ()
    audiobook: bool = False

    def text_fields(self) -> dict[str, str]:
        """Plain-text fields by common name (also the WAV INFO and ffmetadata view)."""
        fields = {"title": self.title, "artist": self.artist, "album": self.album,
                  "track": None if self.track is None else str(self.track),
                  "disc": None if self.disc is None else str(self.disc), "date": self.date,
                  "language": self.language, "comment": self.comment, "copyright": self.copyright,
                  "genre": self.genre}
        return {key: value for key, value in fields.items() if value not in (None, "")}


def chapters_from_starts(starts_ms: Sequence[tuple[str, int]], total_ms: int,
                         urls: Sequence[str | None] = ()) -> tuple[ChapterTag, ...]:
    """Chapters from ``(title, start_ms)`` in order: each ends where the next starts."""
    chapters = []
    for position, (title, start) in enumerate(starts_ms):
        end = starts_ms[position + 1][1] if position + 1 < len(starts_ms) else total_ms
        if end <= start:
            raise DeliveryError(f"chapter '{title}' starts at {start} ms but ends at {end} ms")
        chapters.append(ChapterTag(title, start, end, urls[position] if position < len(urls) else None))
    return tuple(chapters)


def write_tags(path: str | Path, fmt: str, tags: TagSet) -> None:
    """Write ``tags`` into ``path`` (a ``fmt`` file castline encoded), replacing earlier tags."""
    writers = {"mp3": _write_mp3, "flac": _write_flac, "opus": _write_opus, "m4a": _write_mp4,
               "m4b": _write_mp4, "wav": _write_wav}
    if fmt not in writers:
        raise DeliveryError(f"cannot tag '{fmt}' files (taggable: {', '.join(TAGGED_FORMATS)})")
    path = Path(path)
    try:
        writers[fmt](path, tags)
    except DeliveryError:
        raise
    except Exception as exc:  # mutagen raises its own error types per format
        raise DeliveryError(f"could not write tags into {path.name}: {exc}") from exc


# -- MP3: ID3v2.4 -----------------------------------------------------------------------------------

def _write_mp3(path: Path, tags: TagSet) -> None:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        frames = ID3(str(path))
    except ID3NoHeaderError:
        frames = ID3()
    frames.clear()
    for frame in id3_frames(tags):
        frames.add(frame)
    frames.save(str(path), v2_version=4)


def id3_frames(tags: TagSet) -> list:
    """ID3v2.4 frames for ``tags``: text frames, APIC, and CHAP frames under CTOC tables."""
    from mutagen.id3 import (APIC, CHAP, COMM, CTOC, TALB, TCON, TCOP, TDRC, TIT2, TLAN, TPE1, TPOS, TRCK, WXXX,
                             CTOCFlags)

    utf8 = 3
    frames = []
    for frame, value in ((TIT2, tags.title), (TPE1, tags.artist), (TALB, tags.album), (TCOP, tags.copyright),
                         (TCON, tags.genre)):
        if value:
            frames.append(frame(encoding=utf8, text=[value]))
    if tags.track is not None:
        frames.append(TRCK(encoding=utf8, text=[str(tags.track)]))
    if tags.disc is not None:
        frames.append(TPOS(encoding=utf8, text=[str(tags.disc)]))
    if tags.date:
        frames.append(TDRC(encoding=utf8, text=[_id3_timestamp(tags.date)]))
    if tags.language:
        frames.append(TLAN(encoding=utf8, text=[iso639_2(tags.language)]))
    if tags.comment:
        frames.append(COMM(encoding=utf8, lang=iso639_2(tags.language or "en"), desc="", text=[tags.comment]))
    if tags.cover is not None:
        frames.append(APIC(encoding=utf8, mime=tags.cover.mime, type=3, desc="Cover", data=tags.cover.data))
    ids = [f"chp{position}" for position in range(len(tags.chapters))]
    for element_id, chapter in zip(ids, tags.chapters):
        sub_frames = [TIT2(encoding=utf8, text=[chapter.title])]
        if chapter.url:
            sub_frames.append(WXXX(encoding=utf8, desc="chapter url", url=chapter.url))
        frames.append(CHAP(element_id=element_id, start_time=chapter.start_ms, end_time=chapter.end_ms,
                           start_offset=0xFFFFFFFF, end_offset=0xFFFFFFFF, sub_frames=sub_frames))
    if not ids:
        return frames
    top = CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    title = [TIT2(encoding=utf8, text=[tags.title or "Chapters"])]
    if len(ids) <= CTOC_MAX_ENTRIES:
        frames.append(CTOC(element_id="toc", flags=top, child_element_ids=ids, sub_frames=title))
        return frames
    # One top-level table of sub-tables, each listing at most 255 chapters.
    groups = [ids[start:start + CTOC_MAX_ENTRIES] for start in range(0, len(ids), CTOC_MAX_ENTRIES)]
    if len(groups) > CTOC_MAX_ENTRIES:
        raise DeliveryError(f"{len(ids)} chapters: more than an ID3 table of contents can list")
    names = [f"toc{number}" for number in range(len(groups))]
    frames.append(CTOC(element_id="toc", flags=top, child_element_ids=names, sub_frames=title))
    for number, (name, group) in enumerate(zip(names, groups)):
        label = f"Chapters {number * CTOC_MAX_ENTRIES + 1}–{number * CTOC_MAX_ENTRIES + len(group)}"
        frames.append(CTOC(element_id=name, flags=CTOCFlags.ORDERED, child_element_ids=group,
                           sub_frames=[TIT2(encoding=utf8, text=[label])]))
    return frames


def _id3_timestamp(text: str) -> str:
    """ID3v2.4 timestamps have no zone: a date stays a date, a date-time goes to UTC."""
    if len(text) == 10:
        return text
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def iso639_2(language: str) -> str:
    """``en-GB`` → ``eng`` (ID3 TLAN and COMM want ISO 639-2); unknown codes pass through."""
    import pycountry

    primary = language.split("-")[0].lower()
    found = pycountry.languages.get(alpha_2=primary) if len(primary) == 2 else \
        pycountry.languages.get(alpha_3=primary)
    return found.alpha_3 if found is not None else "und"


# -- FLAC and Opus: Vorbis comments -----------------------------------------------------------------

_VORBIS_NAMES = {"title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "track": "TRACKNUMBER",
                 "disc": "DISCNUMBER", "date": "DATE", "language": "LANGUAGE", "comment": "DESCRIPTION",
                 "copyright": "COPYRIGHT", "genre": "GENRE"}


def _vorbis_comments(tags: TagSet) -> list[tuple[str, str]]:
    pairs = [(_VORBIS_NAMES[key], value) for key, value in tags.text_fields().items()]
    if len(tags.chapters) > VORBIS_MAX_CHAPTERS:
        raise DeliveryError(f"{len(tags.chapters)} chapters: Vorbis comments number at most "
                            f"{VORBIS_MAX_CHAPTERS}")
    # The CHAPTERnnn convention (Ogg/Matroska chapter extension), which ffmpeg also reads.
    for number, chapter in enumerate(tags.chapters, start=1):
        pairs.append((f"CHAPTER{number:03d}", _clock_ms(chapter.start_ms)))
        pairs.append((f"CHAPTER{number:03d}NAME", chapter.title))
        if chapter.url:
            pairs.append((f"CHAPTER{number:03d}URL", chapter.url))
    return pairs


def _clock_ms(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _flac_picture(cover: CoverArt):
    from mutagen.flac import Picture

    picture = Picture()
    picture.type = 3
    picture.mime = cover.mime
    picture.desc = "Cover"
    picture.width, picture.height = cover.width, cover.height
    picture.depth = 24
    picture.data = cover.data
    return picture


def _write_flac(path: Path, tags: TagSet) -> None:
    from mutagen.flac import FLAC

    audio = FLAC(str(path))
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    audio.clear_pictures()
    for key, value in _vorbis_comments(tags):
        audio.tags.append((key, value))
    if tags.cover is not None:
        audio.add_picture(_flac_picture(tags.cover))
    audio.save()


def _write_opus(path: Path, tags: TagSet) -> None:
    from mutagen.oggopus import OggOpus

    audio = OggOpus(str(path))
    audio.tags.clear()
    for key, value in _vorbis_comments(tags):
        audio.tags.append((key, value))
    if tags.cover is not None:
        audio.tags.append(("METADATA_BLOCK_PICTURE",
                           base64.b64encode(_flac_picture(tags.cover).write()).decode("ascii")))
    audio.save()


# -- M4A / M4B: chapters by ffmpeg, iTunes atoms by mutagen ------------------------------------------

def ffmetadata(chapters: Sequence[ChapterTag], fields: dict[str, str] | None = None) -> str:
    """An ffmetadata file: global ``fields`` then one ``[CHAPTER]`` block each, in milliseconds."""
    lines = [";FFMETADATA1"]
    lines += [f"{key}={_ffescape(value)}" for key, value in (fields or {}).items()]
    for chapter in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={chapter.start_ms}", f"END={chapter.end_ms}",
                  f"title={_ffescape(chapter.title)}"]
    return "\n".join(lines) + "\n"


def _ffescape(text: str) -> str:
    for char in "\\=;#\n":
        text = text.replace(char, "\\" + char)
    return text


def _write_mp4(path: Path, tags: TagSet) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    _remux_mp4_chapters(path, tags.chapters)
    audio = MP4(str(path))
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    atoms = {"\xa9nam": tags.title, "\xa9ART": tags.artist, "aART": tags.artist, "\xa9alb": tags.album,
             "\xa9cmt": tags.comment, "desc": tags.comment, "cprt": tags.copyright, "\xa9gen": tags.genre,
             "\xa9day": tags.date}
    for atom, value in atoms.items():
        if value:
            audio.tags[atom] = [value]
    if tags.track is not None:
        audio.tags["trkn"] = [(tags.track, 0)]
    if tags.disc is not None:
        audio.tags["disk"] = [(tags.disc, 0)]
    if tags.explicit is not None:
        audio.tags["rtng"] = [1 if tags.explicit else 2]
    if tags.audiobook:
        audio.tags["stik"] = [2]
    if tags.cover is not None:
        kind = MP4Cover.FORMAT_PNG if tags.cover.mime == "image/png" else MP4Cover.FORMAT_JPEG
        audio.tags["covr"] = [MP4Cover(tags.cover.data, imageformat=kind)]
    audio.save()


def _remux_mp4_chapters(path: Path, chapters: Sequence[ChapterTag]) -> None:
    """Copy the audio stream into a new file with a chapter track (or none), then swap it in."""
    with tempfile.TemporaryDirectory(prefix="castline-chapters-", dir=path.parent) as folder:
        meta = Path(folder) / "chapters.txt"
        meta.write_text(ffmetadata(chapters), encoding="utf-8")
        target = Path(folder) / f"remux{path.suffix}"
        # Nero's chpl atom counts in 8 bits (ffmpeg writes the first 255): past that only the
        # QuickTime chapter track, which Apple's players read, is written.
        movflags = "+faststart" + ("+disable_chpl" if len(chapters) > CTOC_MAX_ENTRIES else "")
        command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
                   "-f", "ffmetadata", "-i", str(meta), "-map", "0:a", "-map_metadata", "1",
                   "-map_chapters", "1" if chapters else "-1", "-c", "copy", "-movflags", movflags, str(target)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise DeliveryError(f"ffmpeg could not add chapters to {path.name}: "
                                f"{completed.stderr.strip().splitlines()[-1:]}")
        os.replace(target, path)


# -- WAV: RIFF LIST/INFO (by hand) plus an ID3 chunk (mutagen) ---------------------------------------

_INFO_IDS = {"title": b"INAM", "artist": b"IART", "album": b"IPRD", "track": b"ITRK", "date": b"ICRD",
             "language": b"ILNG", "comment": b"ICMT", "copyright": b"ICOP", "genre": b"IGNR"}


def _write_wav(path: Path, tags: TagSet) -> None:
    from mutagen.wave import WAVE

    audio = WAVE(str(path))
    if audio.tags is not None:
        audio.delete()
    if tags.cover is not None or tags.chapters:
        # INFO holds text only: the cover and chapters go in an ID3 chunk, as in MP3.
        audio = WAVE(str(path))
        audio.add_tags()
        for frame in id3_frames(TagSet(title=tags.title, cover=tags.cover, chapters=tags.chapters)):
            audio.tags.add(frame)
        audio.save(v2_version=4)
    write_riff_info(path, {_INFO_IDS[key]: value for key, value in tags.text_fields().items()
                           if key in _INFO_IDS})


def write_riff_info(path: str | Path, fields: dict[bytes, str]) -> None:
    """Replace the RIFF ``LIST``/``INFO`` chunk of a WAV file with ``fields`` (4-byte id → text).

    The chunk goes at the end of the file; any earlier INFO list is removed (the file is rewritten
    only when that list is not already last). RF64 files are left alone.
    """
    path = Path(path)
    chunks = _riff_chunks(path)
    info_at = [(offset, size) for chunk_id, offset, size, list_type in chunks
               if chunk_id == b"LIST" and list_type == b"INFO"]
    body = b"INFO" + b"".join(_info_item(chunk_id, text) for chunk_id, text in fields.items())
    new_chunk = b"LIST" + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    end = chunks[-1][1] + 8 + chunks[-1][2] + (chunks[-1][2] % 2) if chunks else 12
    if not info_at or info_at == [(chunks[-1][1], chunks[-1][2])]:
        keep = info_at[0][0] if info_at else end
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            handle.seek(keep)
            if len(fields):
                handle.write(new_chunk)
            size = handle.tell()
            handle.seek(4)
            handle.write(struct.pack("<I", size - 8))
        return
    skip = {offset for offset, _ in info_at}
    target = path.with_name(path.name + ".info-tmp")
    with open(path, "rb") as source, open(target, "wb") as out:
        out.write(source.read(12))
        for chunk_id, offset, size, _ in chunks:
            if offset in skip:
                continue
            source.seek(offset)
            _copy(source, out, 8 + size + size % 2)
        if fields:
            out.write(new_chunk)
        total = out.tell()
        out.seek(4)
        out.write(struct.pack("<I", total - 8))
    os.replace(target, path)


def _info_item(chunk_id: bytes, text: str) -> bytes:
    data = text.encode("utf-8") + b"\0"
    return chunk_id + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _riff_chunks(path: Path) -> list[tuple[bytes, int, int, bytes]]:
    """``(id, offset, size, list type)`` of each top-level chunk of a RIFF/WAVE file."""
    chunks = []
    with open(path, "rb") as handle:
        header = handle.read(12)
        if header[:4] == b"RF64":
            raise DeliveryError(f"{path.name} is RF64 (over 4 GiB): INFO tags are not written")
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise DeliveryError(f"{path.name} is not a RIFF/WAVE file")
        file_size = path.stat().st_size
        offset = 12
        while offset + 8 <= file_size:
            handle.seek(offset)
            chunk_id, size = struct.unpack("<4sI", handle.read(8))
            list_type = handle.read(4) if chunk_id == b"LIST" else b""
            chunks.append((chunk_id, offset, size, list_type))
            offset += 8 + size + size % 2
    return chunks


def _copy(source, out, count: int, block: int = 1 << 20) -> None:
    while count > 0:
        data = source.read(min(block, count))
        if not data:
            break
        out.write(data)
        count -= len(data)
