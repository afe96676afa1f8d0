"""Audiobook package: ACX chapter MP3s checked on their decoded samples, and one M4B with chapters."""

from __future__ import annotations

import io
import math
import subprocess

import numpy as np
import pytest
import soundfile
from PIL import Image

from castline.audio.encode import ffmpeg_exe
from castline.delivery.audiobook import BookChapter, check_acx, package_audiobook
from castline.delivery.tags import CoverArt, TagSet
from tag_readers import decoded_pcm, ffmetadata_tags, ffmpeg_cover
from tts_renders import render_sentences

RATE = 24_000
TEXTS = ("Chapter one. It was a bright cold day in April, and the clocks were striking thirteen.",
         "Chapter two. The hallway smelt of boiled cabbage and old rag mats.")


@pytest.fixture(scope="module")
def book(tmp_path_factory, voices_dir):
    folder = tmp_path_factory.mktemp("book")
    one, two = render_sentences("hibari", "heart", TEXTS, voices_dir)
    gap = lambda seconds: np.zeros(int(seconds * RATE), np.float32)  # noqa: E731 - the stitcher's pauses
    programme = np.concatenate([gap(0.4), one, gap(0.8), two, gap(0.5)])
    master = folder / "master.wav"
    soundfile.write(master, programme, RATE, subtype="PCM_24")
    split = int((0.4 + 0.4) * RATE) + one.size
    buffer = io.BytesIO()
    Image.new("RGB", (1400, 1400), (20, 60, 20)).save(buffer, "JPEG")
    cover = buffer.getvalue()
    tags = TagSet(title="A Short Book", artist="A. Writer", copyright="© 2026", language="en",
                  cover=CoverArt(cover, "image/jpeg", 1400, 1400))
    package = package_audiobook(master, [BookChapter("One", 0, split), BookChapter("Two", split, programme.size)],
                                folder / "out", tags)
    return folder, package, cover


def test_chapter_files_meet_acx_on_the_decoded_samples(book):
    folder, package, _ = book
    assert len(package.chapter_files) == 2 and package.passed, [r.problems for r in package.chapter_files]
    for reading in package.chapter_files:
        # Re-read independently of check_acx: ffmpeg decodes, numpy measures.
        samples = np.frombuffer(decoded_pcm(reading.path, 44_100), dtype="<f4").astype(np.float64)
        rms_db = 10 * math.log10(np.mean(samples ** 2))
        peak_db = 20 * math.log10(np.max(np.abs(samples)))
        assert -23.0 <= rms_db <= -18.0
        assert peak_db <= -3.0
        assert samples.size / 44_100 <= 120 * 60
        frames = samples[: samples.size - samples.size % 441].reshape(-1, 441)
        frame_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-30)
        loud = np.flatnonzero(frame_db > -50)
        head_s, tail_s = loud[0] / 100, (frames.shape[0] - loud[-1] - 1) / 100
        assert 0.5 <= head_s <= 1.0 and 1.0 <= tail_s <= 5.0
        # Room tone, not digital zero, under -60 dB: the quietest half second.
        energy = np.concatenate([[0.0], np.cumsum(samples ** 2)])
        floor_db = 10 * math.log10(np.min(energy[22_050:] - energy[:-22_050]) / 22_050)
        assert -90.0 < floor_db <= -60.0
        assert abs(floor_db - reading.noise_floor_dbfs) < 1.0
        assert abs(rms_db - reading.rms_dbfs) < 0.01
        from mutagen.mp3 import MP3, BitrateMode

        info = MP3(reading.path).info
        assert (info.sample_rate, info.channels, info.bitrate_mode) == (44_100, 1, BitrateMode.CBR)
        assert round(info.bitrate / 1000) == 192
        assert reading.to_manifest()["passed"] is True
    assert ffmetadata_tags(package.chapter_files[1].path)["title"] == "Two"


def test_the_m4b_has_chapters_cover_and_audiobook_kind(book):
    folder, package, cover = book
    from mutagen.mp4 import MP4

    m4b = MP4(package.m4b_path)
    assert [chapter.title for chapter in m4b.chapters] == ["One", "Two"]
    assert m4b.chapters[0].start == 0.0
    assert m4b.tags["stik"] == [2] and m4b.tags["\xa9nam"] == ["A Short Book"]
    assert ffmpeg_cover(package.m4b_path, folder / "cover.jpg") == cover


def test_out_of_spec_files_are_reported(tmp_path):
    rate = 44_100
    t = np.arange(3 * rate) / rate
    loud = np.concatenate([np.sin(2 * np.pi * 440 * t) * 0.99, np.zeros(rate)]).astype(np.float32)
    wav, mp3 = tmp_path / "loud.wav", tmp_path / "loud.mp3"
    soundfile.write(wav, np.stack([loud, loud], axis=1), rate)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(wav), "-c:a", "libmp3lame", "-q:a", "4", str(mp3)],
                   check=True)
    reading = check_acx(mp3, "loud")
    problems = " | ".join(reading.problems)
    assert not reading.passed
    for expected in ("head room tone 0.00 s", "RMS", "peak", "digital silence", "VBR", "2 channels"):
        assert expected in problems, problems


BOOK = """\
episode:
  id: short-book
  title: A Short Book
  author: A. Writer
cast:
  narrator: heart
turns:
  - chapter: One
  - speaker: narrator
    text: It was a bright cold day in April, and the clocks were striking thirteen.
  - chapter: Two
  - speaker: narrator
    text: The hallway smelt of boiled cabbage and old rag mats.
"""


@pytest.mark.slow
def test_package_audiobook_render_publishes_checked_files(prefect_api, tmp_path):
    import json

    from castline.qa.settings import QASettings
    from castline.render.options import RenderOptions
    from castline.storage import open_store
    from castline_flows.render_episode import run_render

    (tmp_path / "book.yaml").write_text(BOOK, encoding="utf-8")
    run_render(RenderOptions(script=str(tmp_path / "book.yaml"), out=str(tmp_path / "out"), formats=("mp3",),
                             workers=1, qa=QASettings(policy="off"), package="audiobook"))
    store = open_store(tmp_path / "out")
    manifest = json.loads(store.get_bytes("short-book/manifest.json"))
    book = manifest["audiobook"]
    assert book["passed"] and [item["kind"] for item in book["files"]] == ["m4b", "acx-chapter", "acx-chapter"]
    assert [item["acx"]["title"] for item in book["files"][1:]] == ["One", "Two"]
    for item in book["files"]:
        assert store.info(item["key"]).sha256 == item["sha256"]
    chapter = tmp_path / "out" / book["files"][2]["key"]
    assert check_acx(chapter).passed
    assert ffmetadata_tags(chapter)["title"] == "Two"
