"""Audiobook packaging: one M4B (chapters, cover) plus one ACX-shaped MP3 per chapter.

ACX / Audible submission numbers, checked on each *decoded* chapter file:

- one chapter per file, at most 120 minutes;
- room tone 0.5–1 s at the head and 1–5 s at the tail (castline writes 0.75 s and 2 s);
- RMS −23…−18 dB, peaks ≤ −3 dB, noise floor ≤ −60 dB (and not digital silence);
- MP3, 192 kbps CBR, 44.1 kHz, mono (mono sidesteps LAME's joint stereo, which ACX refuses).

Each chapter is cut from the programme at its speech (silence around it is replaced), mastered
to the ``acx`` preset, laid over a quiet, seeded room tone (the stitcher's pauses are digital
zero, which ACX rejects), encoded, decoded and measured. Everything streams in blocks.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile

from castline.audio.encode import ffmpeg_exe
from castline.core.errors import DeliveryError
from castline.core.timebase import samples_to_seconds, seconds_to_samples
from castline.delivery.master import master
from castline.delivery.tags import TagSet, chapters_from_starts, write_tags
from castline.dsp.loudness import LoudnessMeter
from castline.dsp.presets import PRESETS

MAX_CHAPTER_MINUTES = 120.0
HEAD_ROOM_TONE_S = (0.5, 1.0)
TAIL_ROOM_TONE_S = (1.0, 5.0)
RMS_WINDOW_DBFS = (-23.0, -18.0)
PEAK_MAX_DBFS = -3.0
NOISE_FLOOR_MAX_DBFS = -60.0
MP3_BITRATE_KBPS = 192
MP3_SAMPLE_RATE = 44_100
HEAD_WRITTEN_S = 0.75
TAIL_WRITTEN_S = 2.0
ROOM_TONE_DBFS = -70.0
"""RMS of the room tone laid under each chapter: audible as 'not silence', 10 dB under ACX's limit."""
SPEECH_THRESHOLD_DBFS = -50.0
"""A 10 ms frame louder than this is speech (room tone sits 20 dB below, speech 30 dB above)."""
FRAME_S = 0.01
BLOCK_SAMPLES = 65_536
ROOM_TONE_SEED = 20_240_601


@dataclass(frozen=True)
class BookChapter:
    """A chapter of the programme: ``[start_sample, end_sample)`` of the master file."""

    title: str
    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class AcxReading:
    """What one decoded chapter file measures, and every ACX number it misses (``problems``)."""

    path: str
    title: str
    duration_s: float
    head_room_tone_s: float
    tail_room_tone_s: float
    rms_dbfs: float
    peak_dbfs: float
    noise_floor_dbfs: float
    sample_rate: int
    channels: int
    bitrate_kbps: int
    constant_bitrate: bool
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_manifest(self) -> dict[str, object]:
        def number(value: float) -> object:
            return round(value, 3) if math.isfinite(value) else None

        return {"path": Path(self.path).name, "title": self.title, "duration_s": number(self.duration_s),
                "head_room_tone_s": number(self.head_room_tone_s), "tail_room_tone_s": number(self.tail_room_tone_s),
                "rms_dbfs": number(self.rms_dbfs), "peak_dbfs": number(self.peak_dbfs),
                "noise_floor_dbfs": number(self.noise_floor_dbfs), "sample_rate": self.sample_rate,
                "channels": self.channels, "bitrate_kbps": self.bitrate_kbps,
                "constant_bitrate": self.constant_bitrate, "passed": self.passed, "problems": list(self.problems)}


@dataclass(frozen=True)
class AudiobookPackage:
    """The whole book as one M4B and the ACX chapter files with their readings."""

    m4b_path: str
    chapter_files: tuple[AcxReading, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(reading.passed for reading in self.chapter_files)


def package_audiobook(master_path: str | Path, chapters: Sequence[BookChapter], out_dir: str | Path,
                      tags: TagSet, *, stem: str = "book") -> AudiobookPackage:
    """Write ``<stem>.m4b`` (chapters, cover, ``tags``) and ``<NN>-chapter.mp3`` per chapter under
    ``out_dir``; each MP3 is checked against ACX on its decoded samples."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = soundfile.info(str(master_path))
    if not chapters:
        chapters = [BookChapter(tags.title or "Book", 0, info.frames)]
    readings = []
    for number, chapter in enumerate(chapters, start=1):
        mp3 = out / f"{number:02d}-chapter.mp3"
        make_acx_chapter(master_path, chapter, mp3, work_dir=out)
        write_tags(mp3, "mp3", TagSet(title=chapter.title, artist=tags.artist, album=tags.album or tags.title,
                                      track=number, date=tags.date, language=tags.language,
                                      copyright=tags.copyright, genre="Audiobook", cover=tags.cover))
        readings.append(check_acx(mp3, chapter.title))
    m4b = out / f"{stem}.m4b"
    book_m4b(master_path, chapters, m4b, tags, info.samplerate)
    return AudiobookPackage(m4b_path=str(m4b), chapter_files=tuple(readings))


def book_m4b(master_path: str | Path, chapters: Sequence[BookChapter], out_path: str | Path, tags: TagSet,
             sample_rate: int) -> None:
    """The whole programme as AAC in an M4B, with a chapter track, iTunes atoms and the cover."""
    from castline.audio.encode import encode_file

    encode_file(master_path, "m4b", out_path)
    ms = [(chapter.title, round(samples_to_seconds(chapter.start_sample, sample_rate) * 1000))
          for chapter in chapters]
    total_ms = round(samples_to_seconds(max(c.end_sample for c in chapters), sample_rate) * 1000)
    write_tags(out_path, "m4b", TagSet(**{**_fields(tags), "chapters": chapters_from_starts(ms, total_ms),
                                          "audiobook": True}))


def _fields(tags: TagSet) -> dict[str, object]:
    return {name: getattr(tags, name) for name in tags.__dataclass_fields__}


# -- one chapter ----------------------------------------------------------------------------------

def make_acx_chapter(master_path: str | Path, chapter: BookChapter, mp3_path: str | Path, *,
                     work_dir: str | Path) -> None:
    """Cut, master to ACX, lay over room tone and encode one chapter as MP3 (192k CBR, 44.1 kHz mono)."""
    work = Path(work_dir)
    cut = work / f".{Path(mp3_path).stem}-cut.wav"
    mastered = work / f".{Path(mp3_path).stem}-acx.wav"
    toned = work / f".{Path(mp3_path).stem}-tone.wav"
    try:
        rate = _cut_speech(Path(master_path), chapter, cut)
        meter = LoudnessMeter(rate, 1, true_peak=False)
        for block in _blocks(cut):
            meter.process(block)
        result = master(cut, meter.result(), PRESETS["acx"], mastered)
        if result.reading.duration_samples == 0:
            raise DeliveryError(f"chapter '{chapter.title}' is empty")
        _add_room_tone(mastered, toned)
        command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(toned),
                   "-map_metadata", "-1", "-ac", "1", "-ar", str(MP3_SAMPLE_RATE), "-c:a", "libmp3lame",
                   "-b:a", f"{MP3_BITRATE_KBPS}k", str(mp3_path)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise DeliveryError(f"ffmpeg could not encode {Path(mp3_path).name}: {completed.stderr.strip()[-200:]}")
    finally:
        for path in (cut, mastered, toned):
            path.unlink(missing_ok=True)


def _cut_speech(source: Path, chapter: BookChapter, target: Path) -> int:
    """Write head room + the chapter's speech + tail room (zeros: the room tone is laid later)."""
    with soundfile.SoundFile(str(source)) as reader:
        rate = reader.samplerate
        first, last = _speech_bounds(reader, chapter, rate)
        if first is None:
            raise DeliveryError(f"chapter '{chapter.title}' has no speech")
        with soundfile.SoundFile(str(target), "w", samplerate=rate, channels=1, subtype="FLOAT",
                                 format="WAV") as writer:
            _write_zeros(writer, seconds_to_samples(HEAD_WRITTEN_S, rate))
            reader.seek(first)
            remaining = last - first
            while remaining > 0:
                block = reader.read(min(BLOCK_SAMPLES, remaining), dtype="float32", always_2d=True)
                if not len(block):
                    break
                writer.write(block.mean(axis=1))
                remaining -= len(block)
            _write_zeros(writer, seconds_to_samples(TAIL_WRITTEN_S, rate))
    return rate


def _speech_bounds(reader: soundfile.SoundFile, chapter: BookChapter, rate: int) -> tuple[int | None, int]:
    frame = max(1, seconds_to_samples(FRAME_S, rate))
    threshold = 10 ** (SPEECH_THRESHOLD_DBFS / 10)
    first = last = None
    reader.seek(chapter.start_sample)
    position = chapter.start_sample
    while position < chapter.end_sample:
        count = min(BLOCK_SAMPLES - BLOCK_SAMPLES % frame, chapter.end_sample - position)
        block = reader.read(count, dtype="float32", always_2d=True).mean(axis=1)
        if not block.size:
            break
        usable = block.size - block.size % frame
        if usable:
            power = np.mean(block[:usable].reshape(-1, frame) ** 2, axis=1)
            loud = np.flatnonzero(power > threshold)
            if loud.size:
                first = position + loud[0] * frame if first is None else first
                last = position + (loud[-1] + 1) * frame
        position += block.size
    return first, (last if last is not None else chapter.start_sample)


def _write_zeros(writer: soundfile.SoundFile, count: int) -> None:
    while count > 0:
        step = min(count, BLOCK_SAMPLES)
        writer.write(np.zeros(step, np.float32))
        count -= step


def _add_room_tone(source: Path, target: Path) -> None:
    """Add a seeded, gently low-passed noise at ``ROOM_TONE_DBFS`` RMS under the whole chapter."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(ROOM_TONE_SEED)
    level = 10 ** (ROOM_TONE_DBFS / 20)
    state = np.zeros(1)
    with soundfile.SoundFile(str(source)) as reader, soundfile.SoundFile(
            str(target), "w", samplerate=reader.samplerate, channels=1, subtype="PCM_24", format="WAV") as writer:
        for block in reader.blocks(blocksize=BLOCK_SAMPLES, dtype="float32", always_2d=True):
            # One-pole low-pass keeps the tone where MP3 does not drop it first; its output
            # variance for unit white noise is 0.25 / (1 - 0.25) = 1/3, hence the sqrt(3).
            tone, state = lfilter([0.5], [1.0, -0.5], rng.standard_normal(len(block)), zi=state)
            writer.write(block[:, 0] + (tone * math.sqrt(3.0) * level).astype(np.float32))


def _blocks(path: Path) -> Iterator[np.ndarray]:
    with soundfile.SoundFile(str(path)) as reader:
        for block in reader.blocks(blocksize=BLOCK_SAMPLES, dtype="float32", always_2d=True):
            yield block[:, 0]


# -- the check ------------------------------------------------------------------------------------

def check_acx(path: str | Path, title: str = "") -> AcxReading:
    """Decode ``path`` and read it against the ACX numbers (duration, room tone, RMS, peak, noise
    floor) plus the MP3 stream's own rate, channels and bitrate mode (read by mutagen)."""
    from mutagen.mp3 import MP3, BitrateMode

    stream = MP3(str(path)).info
    rate = MP3_SAMPLE_RATE
    frame = seconds_to_samples(FRAME_S, rate)
    threshold = 10 ** (SPEECH_THRESHOLD_DBFS / 10)
    meter = LoudnessMeter(rate, 1, true_peak=False)
    frame_loud: list[np.ndarray] = []
    leftover = np.zeros(0, np.float32)
    for block in _decoded(path, rate):
        meter.process(block)
        data = np.concatenate([leftover, block])
        usable = data.size - data.size % frame
        frame_loud.append(np.mean(data[:usable].reshape(-1, frame) ** 2, axis=1) > threshold)
        leftover = data[usable:]
    loud = np.concatenate(frame_loud) if frame_loud else np.zeros(0, bool)
    reading = meter.result()
    duration = samples_to_seconds(reading.duration_samples, rate)
    indexes = np.flatnonzero(loud)
    head = indexes[0] * FRAME_S if indexes.size else duration
    tail = duration - (indexes[-1] + 1) * FRAME_S if indexes.size else duration
    floor = meter.noise_floor_dbfs()
    problems = []
    if duration > MAX_CHAPTER_MINUTES * 60:
        problems.append(f"{duration / 60:.1f} min long, over {MAX_CHAPTER_MINUTES:.0f} min")
    if not HEAD_ROOM_TONE_S[0] <= head <= HEAD_ROOM_TONE_S[1]:
        problems.append(f"head room tone {head:.2f} s outside {HEAD_ROOM_TONE_S[0]}–{HEAD_ROOM_TONE_S[1]} s")
    if not TAIL_ROOM_TONE_S[0] <= tail <= TAIL_ROOM_TONE_S[1]:
        problems.append(f"tail room tone {tail:.2f} s outside {TAIL_ROOM_TONE_S[0]}–{TAIL_ROOM_TONE_S[1]} s")
    if not RMS_WINDOW_DBFS[0] <= reading.rms_dbfs <= RMS_WINDOW_DBFS[1]:
        problems.append(f"RMS {reading.rms_dbfs:.2f} dB outside {RMS_WINDOW_DBFS[0]}…{RMS_WINDOW_DBFS[1]} dB")
    if reading.sample_peak_dbfs > PEAK_MAX_DBFS:
        problems.append(f"peak {reading.sample_peak_dbfs:.2f} dB above {PEAK_MAX_DBFS} dB")
    if not floor <= NOISE_FLOOR_MAX_DBFS:
        problems.append(f"noise floor {floor:.1f} dB above {NOISE_FLOOR_MAX_DBFS} dB")
    if math.isinf(floor):
        problems.append("noise floor is digital silence (ACX asks for room tone)")
    bitrate = round(stream.bitrate / 1000)
    # LAME marks CBR in its Info header; a stream without one (UNKNOWN) has no VBR header either.
    cbr = stream.bitrate_mode in (BitrateMode.CBR, BitrateMode.UNKNOWN)
    if bitrate < MP3_BITRATE_KBPS or not cbr:
        problems.append(f"MP3 {bitrate} kbps {'CBR' if cbr else 'VBR'}; ACX needs {MP3_BITRATE_KBPS} kbps CBR")
    if stream.sample_rate != MP3_SAMPLE_RATE or stream.channels != 1:
        problems.append(f"{stream.sample_rate} Hz, {stream.channels} channels; castline delivers 44.1 kHz mono")
    return AcxReading(path=str(path), title=title, duration_s=duration, head_room_tone_s=float(head),
                      tail_room_tone_s=float(tail), rms_dbfs=reading.rms_dbfs,
                      peak_dbfs=reading.sample_peak_dbfs, noise_floor_dbfs=floor, sample_rate=stream.sample_rate,
                      channels=stream.channels, bitrate_kbps=bitrate, constant_bitrate=cbr,
                      problems=tuple(problems))


def _decoded(path: str | Path, rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` decoded by ffmpeg at ``rate`` Hz."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "f32le",
               "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(rate), "pipe:1"]
    leftover = b""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        while True:
            data = process.stdout.read(1 << 20)
            if not data:
                break
            data = leftover + data
            usable = len(data) - len(data) % 4
            leftover = data[usable:]
            yield np.frombuffer(data[:usable], dtype="<f4")
        process.wait()
    if process.returncode != 0:
        raise DeliveryError(f"ffmpeg could not decode {Path(path).name}")
