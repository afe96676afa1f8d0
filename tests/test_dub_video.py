"""Dubbing for picture, end to end through the library (no Prefect) on a real test video made by
ffmpeg: the muxed file's streams, codecs, language tags, titles, default flags and durations
(read back by parsing ``ffmpeg -i``, and by decoding every track), the bed, and a cue's speech
onset in the muxed dub track at its slot within one video frame."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
import soundfile

from castline.audio.encode import ffmpeg_exe
from castline.core.errors import DubError
from castline.dub.options import DubOptions
from castline.dub.picture import deliver_picture
from castline.dub.pipeline import dub_language, dub_programme
from castline.dub.plan import prepare_dub
from castline.dub.video import decode_track, iso639_2, parse_ffmpeg_info, probe_media, track_title
from castline.engines.espeak import espeak_binary

pytestmark = pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed (apt-get install "
                                                                "espeak-ng)")
FPS = 25
HIGH_HZ = 15_000
FRAME_S = 1 / FPS
SECONDS = 6
SPANISH = ("1\n00:00:01,000 --> 00:00:02,800\nANA: Buenos días a todos.\n\n"
           "2\n00:00:03,400 --> 00:00:05,200\nLUIS: ¿Qué tal estás?\n")
GERMAN = ("WEBVTT\n\n00:00.800 --> 00:02.600\n<v Anna>Guten Morgen.\n\n"
          "00:03.200 --> 00:05.000\n<v Lukas>Wie geht's?\n")


def _video(path: Path, seconds: float = SECONDS) -> Path:
    """A 320x240 25 fps H.264 test picture; its audio two tones (330 Hz and 15 kHz) at 44.1 kHz: a
    programme whose audio rate is not the mix's (the bed must go up to 48 kHz, never down)."""
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}:duration={seconds}",
                    "-f", "lavfi", "-i", f"aevalsrc=0.1*sin(2*PI*330*t)+0.05*sin(2*PI*{HIGH_HZ}*t):s=44100:d={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(path)], check=True)
    return path


class PictureRecord:
    """``dub_programme``'s picture entry (the record) with the files it lists."""

    def __init__(self, record) -> None:
        self.record = record
        data = json.loads(_path(record.uri).read_text(encoding="utf-8"))
        self.files = [SimpleNamespace(uri=item["uri"], key=item["key"]) for item in data["files"]]


def _path(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path))


def _dub(folder: Path, voices_dir: Path, **extra) -> tuple[tuple, object]:
    (folder / "es.srt").write_text(SPANISH, encoding="utf-8")
    (folder / "de.vtt").write_text(GERMAN, encoding="utf-8")
    options = DubOptions(cues=(str(folder / "es.srt"), str(folder / "de.vtt")), video=str(folder / "show.mp4"),
                         out=str(folder / "out"), voices_dir=str(voices_dir), **extra)
    plans = prepare_dub(options)
    if options.keep_original_audio:  # language by language, then the picture
        for plan in plans:
            dub_language(plan, folder / "work")
        return plans, deliver_picture(plans, folder / "work")
    published = dub_programme(plans, folder / "work")  # the same as one call
    assert sorted(published) == ["de", "es", "picture"]
    return plans, PictureRecord(published["picture"])


@pytest.fixture(scope="module")
def voice_over(tmp_path_factory, voices_dir):
    """No M&E stem: the programme's own audio is the bed; original audio kept; MKV and MP4."""
    folder = tmp_path_factory.mktemp("picture")
    _video(folder / "show.mp4")
    plans, result = _dub(folder, voices_dir, keep_original_audio=True, containers=("mkv", "mp4"))
    return folder, plans, result


def test_plan_reads_the_picture_and_mixes_at_48k(voice_over):
    _, plans, _ = voice_over
    for plan in plans:
        assert plan.picture is not None and (plan.picture.fps_num, plan.picture.fps_den) == (FPS, 1)
        assert plan.picture.frames == SECONDS * FPS
        assert plan.sample_rate == 48_000 and plan.picture.duration_samples == SECONDS * 48_000
        assert plan.background is not None and plan.background.kind == "programme-audio"
    mix = soundfile.info(str(Path(plans[0].options.out) / plans[0].prefix / "mix.wav"))
    assert mix.samplerate == 48_000 and mix.frames == SECONDS * 48_000


def test_muxed_streams_tags_defaults_and_durations(voice_over):
    folder, plans, result = voice_over
    record = json.loads(_path(result.record.uri).read_text(encoding="utf-8"))
    assert record["bed"]["kind"] == "programme-audio" and "voice-over" in record["bed"]["description"]
    assert [info.key for info in result.files] == [f"{plans[0].programme}/dubbed.mkv",
                                                   f"{plans[0].programme}/dubbed.mp4"]
    source = probe_media(folder / "show.mp4")
    for info in result.files:
        path = _path(info.uri)
        media = probe_media(path)
        kinds = [stream.kind for stream in media.streams]
        assert kinds == ["video", "audio", "audio", "audio", "subtitle", "subtitle"]
        assert media.video.codec == "h264" and media.frames == source.frames  # copied, frame for frame
        assert [s.codec for s in media.audio] == ["aac"] * 3
        assert [s.language for s in media.audio[1:]] == ["spa", "ger"]
        assert [s.title for s in media.audio] == ["Original", "Español (dub)", "Deutsch (dub)"]
        assert [s.default for s in media.audio] == [False, True, False]
        assert [s.language for s in media.subtitles] == ["spa", "ger"]
        assert [s.codec for s in media.subtitles] == (["subrip"] * 2 if path.suffix == ".mkv" else ["mov_text"] * 2)
        if path.suffix == ".mkv":  # Matroska records each track's length
            for stream in (*media.audio, media.video):
                assert abs(stream.duration_s - SECONDS) <= FRAME_S
        for number in range(3):  # what a player decodes
            assert abs(decode_track(path, number, 48_000).size / 48_000 - SECONDS) <= FRAME_S


def test_the_bed_is_the_programme_audio_ducked_under_the_dub(voice_over):
    folder, plans, result = voice_over
    mkv = _path(result.files[0].uri)
    dub = decode_track(mkv, 1, 48_000)
    rate = 48_000

    def level_at_330(start_s: float) -> float:
        piece = dub[int(start_s * rate):int((start_s + 0.4) * rate)]
        spectrum = np.abs(np.fft.rfft(piece * np.hanning(piece.size)))
        return float(spectrum[round(330 * piece.size / rate)])

    # The sine runs under the whole dub: full before the first cue, ducked (12 dB) while it speaks.
    before, during = level_at_330(0.1), level_at_330(1.2)
    assert before > 0 and 8.0 < 20 * np.log10(before / during) < 16.0


def _level(audio: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(spectrum[round(hz * audio.size / rate)])


def test_the_bed_is_mixed_whole_at_48k_and_not_normalised(voice_over):
    """Before the first cue's duck, the mix is the programme audio times the master's programme
    gain, at 330 Hz and at 15 kHz alike: nothing lost to a 24 kHz mix, no gain from the mixer."""
    folder, plans, _ = voice_over
    rate = 48_000
    source = decode_track(folder / "show.mp4", 0, rate)
    for plan in plans:
        manifest = json.loads((Path(plan.options.out) / plan.prefix / "manifest.json").read_text(encoding="utf-8"))
        gain_db = manifest["mastering"]["programme_gain_db"]
        mix, mix_rate = soundfile.read(str(Path(plan.options.out) / plan.prefix / "mix.wav"), dtype="float32")
        assert mix_rate == rate and manifest["background"]["kind"] == "programme-audio"
        window = slice(int(0.1 * rate), int(0.6 * rate))  # the first duck starts 120 ms before 0.8 s
        for hz in (330, HIGH_HZ):
            change_db = 20 * np.log10(_level(mix[window], rate, hz) / _level(source[window], rate, hz))
            assert abs(change_db - gain_db) < 0.3, (plan.language, hz, change_db, gain_db)


def test_dialogue_only_onset_at_its_slot_within_one_frame(tmp_path, voices_dir):
    _video(tmp_path / "show.mp4")
    plans, result = _dub(tmp_path, voices_dir, background="none", video_audio_codec="opus")
    assert plans[0].background is None
    mkv = _path(result.files[0].uri)
    media = probe_media(mkv)
    assert [s.codec for s in media.audio] == ["opus", "opus"] and media.audio[0].default
    record = json.loads(_path(result.record.uri).read_text(encoding="utf-8"))
    assert record["bed"]["kind"] == "none"
    for number, plan in enumerate(plans):
        track = decode_track(mkv, number, 48_000)
        assert abs(track.size / 48_000 - SECONDS) <= FRAME_S
        threshold = np.max(np.abs(track)) * 10 ** (-40 / 20)
        for unit in plan.units:
            start = unit.slot_start_sample
            window = track[max(0, start - 24_000):start + 24_000]
            onset = max(0, start - 24_000) + int(np.flatnonzero(np.abs(window) >= threshold)[0])
            assert abs(onset - start) / 48_000 <= FRAME_S, (plan.language, unit.index, onset - start)


def test_bad_video_inputs_are_one_line_errors(tmp_path, voices_dir):
    (tmp_path / "es.srt").write_text(SPANISH, encoding="utf-8")
    (tmp_path / "audio.wav").write_bytes(b"")
    soundfile.write(str(tmp_path / "audio.wav"), np.zeros(48_000, np.float32), 48_000)
    with pytest.raises(DubError, match="no video stream"):
        prepare_dub(DubOptions(cues=(str(tmp_path / "es.srt"),), video=str(tmp_path / "audio.wav"),
                               voices_dir=str(voices_dir), out=str(tmp_path / "out")))
    with pytest.raises(DubError, match="video file not found"):
        prepare_dub(DubOptions(cues=(str(tmp_path / "es.srt"),), video=str(tmp_path / "missing.mp4"),
                               voices_dir=str(voices_dir), out=str(tmp_path / "out")))
    with pytest.raises(ValueError, match="need --video"):
        DubOptions(cues=("es.srt",), keep_original_audio=True)


def test_language_tags_titles_and_ntsc_rates():
    assert (iso639_2("es"), iso639_2("de"), iso639_2("pt-BR"), iso639_2("fra"), iso639_2("qq")) == \
        ("spa", "ger", "por", "fre", "und")
    assert track_title("es") == "Español (dub)" and track_title("pt-br") == "Português (BR) (dub)"
    info = parse_ffmpeg_info(
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':\n  Duration: 00:01:00.06, start: 0.000000, bitrate: 1 kb/s\n"
        "  Stream #0:0[0x1](eng): Video: h264 (High), yuv420p, 1920x1080, 29.97 fps, 29.97 tbr, 30k tbn (default)\n"
        "  Stream #0:1[0x2](eng): Audio: aac (LC), 48000 Hz, 5.1(side), fltp, 384 kb/s\n")
    assert info.frame_rate.numerator == 30000 and info.frame_rate.denominator == 1001
    assert (info.width, info.height, info.duration_s) == (1920, 1080, 60.06)
    assert info.audio[0].sample_rate == 48_000 and info.audio[0].language == "eng"


@pytest.mark.slow
def test_the_command_dubs_a_video(tmp_path, prefect_api):
    """``castline dub --video … --background none --mp4 --qa off`` end to end (Prefect flow included)."""
    import os
    import sys

    _video(tmp_path / "show.mp4", seconds=4)
    (tmp_path / "es.srt").write_text("1\n00:00:01,000 --> 00:00:02,500\nANA: Buenos días.\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "castline_cli", "dub", "--video", str(tmp_path / "show.mp4"),
                             "--cues", str(tmp_path / "es.srt"), "--background", "none", "--mp4", "--qa", "off",
                             "--out", str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PREFECT_API_URL": prefect_api,
                                 "CASTLINE_VOICES_DIR": str(Path(__file__).resolve().parents[1] / "voices")})
    assert result.returncode == 0, result.stderr
    assert "video: file://" in result.stdout
    programme = tmp_path / "out" / "show"
    assert {p.name for p in programme.iterdir()} == {"es", "dubbed.mkv", "dubbed.mp4", "picture.json"}
    media = probe_media(programme / "dubbed.mp4")
    assert [(s.language, s.default) for s in media.audio] == [("spa", True)] and media.frames == 4 * FPS
    manifest = json.loads((programme / "es" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["picture"]["bed"] == "none" and manifest["picture"]["frames"] == 4 * FPS


def test_an_audio_stream_that_starts_late_keeps_its_place_against_the_picture(tmp_path):
    """The programme's audio starts 0.5 s after its picture (``start 0.500000``): the bed keeps the
    tone at 0.5 s instead of pulling it to zero, and still lasts the picture's duration."""
    from castline.dub.video import demux_audio

    tone = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000:duration=2", str(tone)], check=True)
    late = tmp_path / "late.mkv"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={FPS}:duration=3",
                    "-itsoffset", "0.5", "-i", str(tone), "-map", "0:v", "-map", "1:a",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(late)], check=True)
    media = probe_media(late)
    assert media.audio[0].start_s == pytest.approx(0.5, abs=0.03) and media.video.start_s == 0.0
    bed = demux_audio(late, tmp_path / "bed.wav", duration_samples=media.duration_samples(48_000))
    audio, rate = soundfile.read(str(bed), always_2d=True)
    onset = int(np.argmax(np.abs(audio[:, 0]) > 0.05))
    assert rate == 48_000 and audio.shape[0] == 3 * 48_000
    assert abs(onset / rate - 0.5) <= FRAME_S / 2
