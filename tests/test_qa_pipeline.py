"""QA inside the render: bad takes are heard, flagged and retried; strict refuses delivery."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import soundfile

from castline.engines import registry
from castline.render.options import RenderOptions
from castline.qa.asr import Transcriber
from castline.qa.listening import CAREFUL
from castline.qa.settings import QASettings
from castline.render.plan import prepare_render
from castline.storage import open_store
from castline.render.synthesis import synthesise_batch
from conftest import speech_like
from fake_engines import FlakyHibari, ToneWindows

pytestmark = pytest.mark.slow


def _plan(tmp_path, text, engine=None, **qa):
    script = tmp_path / "ep.txt"
    script.write_text(text, encoding="utf-8")
    return prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), cast=(("1", "heart"),),
                                        engine=engine, qa=QASettings(**qa)))


def test_wrong_or_silent_first_takes_are_flagged_and_retried(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.ENGINE_CLASSES, "flaky-hibari", "fake_engines:FlakyHibari")
    import castline.render.plan as render_plan

    monkeypatch.setattr(render_plan, "voice_usability", lambda voice, engine=None: registry.Availability(True))
    FlakyHibari.takes = {}
    plan = _plan(tmp_path, "Speaker 1: The library opens at nine every morning.\n\n"
                           "Speaker 1: Please keep quiet in the reading room.\n", engine="flaky-hibari")
    records = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    for record in records:
        check = record.check
        assert check.attempts == 2 and check.passed, check
        first, second = check.attempt_log
        assert not first[4] and second[4]  # the second take was chosen
        assert first[3] and ("wer-high" in first[3] or "silent" in first[3])
        assert check.wer <= 0.15
    # the accepted take and its QA are stored: a re-run hears nothing new and renders nothing
    again = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    assert [r.rendered for r in again] == [False, False] and again[0].check.attempts == 2


def _count_whisper_windows(monkeypatch) -> list[tuple[int, float]]:
    """(Whisper windows, listening speed) per packed hearing call, as the test goes."""
    windows = []
    original = Transcriber.transcribe_batch

    def counted(self, clips, sample_rate, language="en", *, listening=CAREFUL):
        windows.append((len(clips), listening.speed))
        return original(self, clips, sample_rate, language, listening=listening)

    monkeypatch.setattr(Transcriber, "transcribe_batch", counted)
    return windows


def test_only_the_wrong_take_is_retried_and_every_round_is_heard_in_one_window(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.ENGINE_CLASSES, "flaky-hibari", "fake_engines:FlakyHibari")
    import castline.render.plan as render_plan

    monkeypatch.setattr(render_plan, "voice_usability", lambda voice, engine=None: registry.Availability(True))
    monkeypatch.setattr(FlakyHibari, "takes", {})
    monkeypatch.setattr(FlakyHibari, "flaky_marker", "garden")  # only this line's first take is wrong
    windows = _count_whisper_windows(monkeypatch)
    plan = _plan(tmp_path, "Speaker 1: The library opens at nine every morning.\n\n"
                           "Speaker 1: Volunteers look after the garden behind the building.\n\n"
                           "Speaker 1: Children's stories are read aloud on Saturdays.\n\n"
                           "Speaker 1: The reading room closes an hour before the library.\n", engine="flaky-hibari")
    records = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    assert [record.check.attempts for record in records] == [1, 2, 1, 1]
    assert all(record.check.passed for record in records)
    first, second = records[1].check.attempt_log
    assert "wer-high" in first[3] and not first[4] and second[4]
    # four first takes (~13 s) in one quick window; the take that failed it heard again alone,
    # carefully (and failing again); then its retake in one quick window, passing it
    assert windows == [(1, 1.5), (1, 1.0), (1, 1.5)]
    assert [dict(record.check.metrics)["asr_careful_relisten"] for record in records] == [0.0, 0.0, 0.0, 0.0]


def test_windowed_lines_are_heard_together_and_failing_windows_retried_in_one_call(tmp_path, monkeypatch,
                                                                                   voices_dir):
    from castline.voices.ingest import add_voice
    from castline.render.windows import synthesise_windows

    monkeypatch.setitem(registry.ENGINE_CLASSES, "tone-windows", "fake_engines:ToneWindows")
    monkeypatch.setattr(ToneWindows, "fail_seeds", set())
    monkeypatch.setattr(ToneWindows, "calls", [])
    voices = tmp_path / "voices"
    shutil.copytree(voices_dir, voices)
    soundfile.write(tmp_path / "ref.wav", speech_like(5.0, 24_000, seed=1), 24_000)
    for name in ("ana", "ben"):
        add_voice(voices, name, tmp_path / "ref.wav", engine="tone-windows", consent_statement="I agree.")
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Welcome back to the show.\nSpeaker 2: Thanks for having me.\n"
                      "Speaker 1: Shall we start?\nSpeaker 2: Let us start.\n", encoding="utf-8")
    plan = prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), voices_dir=str(voices),
                                        cast=(("1", "ana"), ("2", "ben")), qa=QASettings(max_attempts=2),
                                        window_words=10))
    assert len(plan.windows) == 2
    windows = _count_whisper_windows(monkeypatch)
    records = synthesise_windows(plan.windows, plan, open_store(tmp_path / "out"))
    # Tones are not speech: every line fails, so both windows are rendered again, in one call,
    # and each round's lines (both windows') are heard in one packed call.
    # The quick listen fails them all, so each round is heard again carefully, in one packed call too.
    assert ToneWindows.calls == [2, 2] and windows == [(1, 1.5), (1, 1.0), (1, 1.5), (1, 1.0)]
    assert len(records) == 4
    for record in records:
        assert not record.check.passed and "wer-high" in record.check.flags
        assert record.check.attempts == 2 and [entry[0] for entry in record.check.attempt_log] == [1, 2]
        assert sum(entry[4] for entry in record.check.attempt_log) == 1


def test_the_voice_profile_sets_the_speech_rate_band_and_a_new_band_rechecks_stored_chunks(tmp_path, voices_dir):
    voices = tmp_path / "voices"
    shutil.copytree(voices_dir, voices)
    profile = voices / "heart" / "voice.yaml"
    text = profile.read_text(encoding="utf-8")
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: The library opens at nine every morning.\n", encoding="utf-8")

    def render():
        plan = prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), cast=(("1", "heart"),),
                                            voices_dir=str(voices), qa=QASettings(max_attempts=1)))
        return synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))

    profile.write_text(text.replace("words_per_minute: [105, 415]", "words_per_minute: [10, 20]"), encoding="utf-8")
    [slow] = render()
    assert "too-fast" in slow.check.flags and not slow.check.passed
    profile.write_text(text, encoding="utf-8")
    [again] = render()  # same audio (the band is not part of the chunk key), heard again under the new band
    assert not again.rendered and again.check.passed and "too-fast" not in again.check.flags
    assert again.check.fingerprint != slow.check.fingerprint


def test_a_line_the_voice_cannot_speak_is_flagged_while_english_passes(tmp_path):
    plan = _plan(tmp_path, "Speaker 1: Good morning, and welcome to the show.\n"
                           "Speaker 1: Buenos días, ¿dónde está la biblioteca municipal?\n"
                           "Speaker 1: Thank you for listening to us today.\n", max_attempts=2)
    records = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    english, spanish, closing = (record.check for record in records)
    assert english.passed and closing.passed
    assert not spanish.passed and "wer-high" in spanish.flags and spanish.attempts == 2


def test_strict_qa_refuses_to_publish(prefect_api, tmp_path):
    script = tmp_path / "strict.txt"
    script.write_text("Speaker 1: Good morning.\nSpeaker 1: Guten Morgen, wie geht es Ihnen heute?\n",
                      encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    result = subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(tmp_path / "out"),
                             "--cast", "1=heart", "--qa", "strict", "--qa-attempts", "1", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert "QA (strict)" in result.stderr and "nothing published" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "strict").exists()


def test_castline_qa_rechecks_a_published_episode(prefect_api, tmp_path):
    script = tmp_path / "ok.txt"
    script.write_text("Speaker 1: Hello and welcome.\nSpeaker 2: Thanks for having me on the show.\n",
                      encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    rendered = subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(tmp_path / "out"),
                               "--cast", "1=heart", "2=joe", "--qa", "off", "--quiet"],
                              capture_output=True, text=True, env=env, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    folder = tmp_path / "out" / "ok"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    release = folder / "releases" / manifest["release"]
    assert not (release / "qa.json").exists()  # QA was off
    checked = subprocess.run([sys.executable, "-m", "castline_cli", "qa", str(folder)], capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stderr
    assert "QA pass: 2 of 2 chunks passed" in checked.stdout or "QA warn" in checked.stdout
    qa = json.loads((release / "qa.json").read_text(encoding="utf-8"))
    assert len(qa["chunks"]) == 2 and all(c["transcript"] for c in qa["chunks"])
    assert [f["format"] for f in qa["files"]] == ["wav"]
    missing = subprocess.run([sys.executable, "-m", "castline_cli", "qa", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "manifest.json" in missing.stderr
