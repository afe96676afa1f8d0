"""Tags, covers and chapters in every container, read back by a different tool than the writer.

mutagen writes ID3 / Vorbis comments / iTunes atoms / the WAV ID3 chunk and castline writes WAV
INFO: ffmpeg reads them back. ffmpeg writes the MP4 chapter track: mutagen reads it back.
"""

from __future__ import annotations

import io
import shutil
import struct

import numpy as np
import pytest
import soundfile
from PIL import Image

from castline.audio.encode import CODECS, encode_file, measure_file
from castline.core.errors import DeliveryError
from castline.delivery.tags import (CTOC_MAX_ENTRIES, ChapterTag, CoverArt, TagSet, chapters_from_starts, ffmetadata,
                                    write_riff_info, write_tags)
from tag_readers import decoded_pcm, ffmetadata_tags, ffmpeg_chapters, ffmpeg_cover

RATE = 24_000
SECONDS = 6


def _image(kind: str, size: int = 1400) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (180, 40, 30)).save(buffer, kind)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tags")
    t = np.arange(RATE * SECONDS) / RATE
    rng = np.random.default_rng(7)
    signal = 0.25 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) \
        + 0.01 * rng.standard_normal(t.size)
    path = folder / "master.wav"
    soundfile.write(path, signal.astype(np.float32), RATE, subtype="PCM_24")
    return folder, path


def _tags(cover: CoverArt | None, chapters=None) -> TagSet:
    chapters = chapters if chapters is not None else chapters_from_starts(
        [("Cold open", 0), ("Größe & Maß", 2000), ("Outro = end; #3", 4500)], SECONDS * 1000,
        [None, "https://example.org/ch2"])
    return TagSet(title="Episode 3: Ünïcode", artist="Ada Author", album="The Show", track=3, disc=2,
                  date="2026-12-03T09:30:00+01:00", language="en-GB", comment="What this one is about.",
                  copyright="© 2026 Ada", genre="Podcast", explicit=False, cover=cover, chapters=chapters)


def _rate(fmt: str) -> int:
    return CODECS[fmt].sample_rate or RATE


@pytest.mark.parametrize("fmt", ["mp3", "flac", "opus", "m4a", "m4b", "wav"])
def test_tags_chapters_and_cover_read_back_and_audio_is_untouched(master, fmt):
    folder, path = master
    cover = _image("JPEG")
    untagged, tagged = folder / f"plain.{fmt}", folder / f"tagged.{fmt}"
    encode_file(path, fmt, untagged)
    shutil.copyfile(untagged, tagged)
    tags = _tags(CoverArt(cover, "image/jpeg", 1400, 1400))
    write_tags(tagged, fmt, tags)

    # The audio: identical decoded samples, hence identical loudness and true peak.
    assert decoded_pcm(tagged, _rate(fmt)) == decoded_pcm(untagged, _rate(fmt))
    before, after = measure_file(untagged, _rate(fmt), 1), measure_file(tagged, _rate(fmt), 1)
    assert after.integrated_lufs == before.integrated_lufs
    assert after.true_peak_dbtp == before.true_peak_dbtp

    read = ffmetadata_tags(tagged, stream=fmt == "opus")
    assert read["title"] == tags.title
    assert read["artist"] == tags.artist
    assert read["album"] == tags.album
    assert read["copyright"] == tags.copyright
    assert read["comment"] == tags.comment
    assert read["track"].split("/")[0] == "3"
    if fmt != "wav":  # INFO has no disc field
        assert read["disc"].split("/")[0] == "2"
    if fmt == "mp3":
        assert read["date"] == "2026-12-03T08:30:00"  # ID3v2.4 timestamps carry no zone: UTC
        assert read["language"] == "eng"
    elif fmt in ("flac", "opus", "wav"):
        assert read["date"] == tags.date and read["language"] == "en-GB"

    assert ffmpeg_cover(tagged, folder / f"cover-{fmt}.jpg") == cover

    expected = [(chapter.start_ms / 1000, chapter.title) for chapter in tags.chapters]
    if fmt in ("m4a", "m4b"):
        from mutagen.mp4 import MP4

        stored = MP4(str(tagged)).chapters
        assert [(round(chapter.start, 3), chapter.title) for chapter in stored] == expected
    else:
        assert [(start, title) for start, _, title in ffmpeg_chapters(tagged)] == expected


def test_png_cover_round_trips_and_retagging_replaces_tags(master):
    folder, path = master
    png = _image("PNG")
    target = folder / "retag.mp3"
    encode_file(path, "mp3", target)
    write_tags(target, "mp3", _tags(CoverArt(_image("JPEG"), "image/jpeg")))
    write_tags(target, "mp3", TagSet(title="Renamed", cover=CoverArt(png, "image/png")))
    read = ffmetadata_tags(target)
    assert read["title"] == "Renamed" and "artist" not in read
    assert ffmpeg_cover(target, folder / "cover.png") == png
    assert ffmpeg_chapters(target) == []


def test_300_chapters_mp3_nested_tables_and_m4b(master):
    folder, path = master
    starts = [(f"Chapter {number + 1}", number * 20) for number in range(300)]
    tags = TagSet(title="Long book", chapters=chapters_from_starts(starts, SECONDS * 1000))
    mp3 = folder / "book.mp3"
    encode_file(path, "mp3", mp3)
    write_tags(mp3, "mp3", tags)
    read = ffmpeg_chapters(mp3)
    assert [title for _, _, title in read] == [title for title, _ in starts]
    assert [round(start * 1000) for start, _, _ in read] == [start for _, start in starts]

    from mutagen.id3 import ID3, CTOCFlags

    tables = {frame.element_id: frame for frame in ID3(str(mp3)).getall("CTOC")}
    top = [frame for frame in tables.values() if frame.flags & CTOCFlags.TOP_LEVEL]
    assert len(top) == 1
    children = [child for name in top[0].child_element_ids for child in tables[name].child_element_ids]
    assert len(children) == 300 and len(set(children)) == 300
    assert all(len(frame.child_element_ids) <= CTOC_MAX_ENTRIES for frame in tables.values())

    # M4B: past 255 chapters only the QuickTime chapter track is written (Nero's chpl counts
    # in 8 bits), so ffmpeg's own reading is the check here; mutagen reads no truncated chpl.
    m4b = folder / "book.m4b"
    encode_file(path, "m4b", m4b)
    write_tags(m4b, "m4b", tags)
    read = ffmpeg_chapters(m4b)
    assert [title for _, _, title in read] == [title for title, _ in starts]
    from mutagen.mp4 import MP4

    assert not MP4(str(m4b)).chapters


def test_ffmetadata_always_names_its_timebase_and_escapes():
    text = ffmetadata([ChapterTag("a=b; #c\\d", 0, 1500)], {"title": "x\ny"})
    assert text.startswith(";FFMETADATA1\n")
    assert "TIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=a\\=b\\; \\#c\\\\d\n" in text
    assert "title=x\\\ny" in text


def test_wav_info_chunk_is_replaced_wherever_it_sits(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros(1000, np.float32), 8000)
    # An INFO list before the data chunk (some tools write it there), then ours replaces it.
    data = path.read_bytes()
    body = b"INFO" + b"INAM" + struct.pack("<I", 4) + b"old\0"
    moved = data[:12] + b"LIST" + struct.pack("<I", len(body)) + body + data[12:]
    path.write_bytes(moved[:4] + struct.pack("<I", len(moved) - 8) + moved[8:])
    write_riff_info(path, {b"INAM": "new title", b"IART": "odd"})
    assert ffmetadata_tags(path)["title"] == "new title"
    assert path.read_bytes().count(b"INFO") == 1
    samples, rate = soundfile.read(path)
    assert rate == 8000 and samples.size == 1000
    assert int.from_bytes(path.read_bytes()[4:8], "little") == path.stat().st_size - 8


def test_unknown_format_and_bad_chapters_are_delivery_errors(tmp_path):
    with pytest.raises(DeliveryError, match="cannot tag"):
        write_tags(tmp_path / "x.aiff", "aiff", TagSet(title="x"))
    with pytest.raises(DeliveryError, match="starts at"):
        chapters_from_starts([("a", 0), ("b", 0)], 1000)
