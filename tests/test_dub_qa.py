"""Every dub take heard by Whisper: a garbled take is flagged, rendered again and replaced;
timing per cue; qa.json and report.html; --qa strict refuses; a voice that cannot speak the
cue's language is flagged, not crashed on. Real hibari takes, real Whisper base."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.core.errors import DubError
from castline.dub.options import DubOptions
from castline.dub.plan import prepare_dub
from castline.dub.takes_qa import enforce, hear_language, qa_record, report_html
from castline.dub.trim import trimmed
from castline.dub.voicing import voice_language
from castline.engines.pool import get_engine
from castline.qa.settings import QASettings
from castline.storage import open_store

ENGLISH = ("1\n00:00:01,000 --> 00:00:04,000\nThe library opens at nine every morning.\n\n"
           "2\n00:00:05,000 --> 00:00:08,000\nPlease return your books on time.\n")
GARBLE = "Cold rain fell over the grey harbour wall."


def _plan(tmp_path, voices_dir, name: str, cues: str, qa: str = "warn"):
    (tmp_path / name).write_text(cues, encoding="utf-8")
    (tmp_path / "cast.yaml").write_text('en: {voices: {"*": heart}}\nes: {voices: {"*": heart}}\n', encoding="utf-8")
    [plan] = prepare_dub(DubOptions(cues=(str(tmp_path / name),), cast=str(tmp_path / "cast.yaml"),
                                    voices_dir=str(voices_dir), out=str(tmp_path / "out"), qa=qa))
    return plan


def _garble(plan, voiced, index: int = 0):
    """Replace one placed take with speech of other words (what a garbled render sounds like)."""
    voice = plan.voice(voiced.units[index].unit.voice_id)
    engine = get_engine(voice.engine, plan.options.engine_options)
    [native] = engine.synthesize([GARBLE], voice, [0])
    audio = trimmed(resample(resample(native, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE),
                             PROJECT_SAMPLE_RATE, plan.sample_rate), plan.sample_rate)
    np.save(voiced.units[index].segment_path, audio.astype(np.float32), allow_pickle=False)


@pytest.fixture(scope="module")
def heard(tmp_path_factory, voices_dir):
    tmp_path = tmp_path_factory.mktemp("dubqa")
    plan = _plan(tmp_path, voices_dir, "en.srt", ENGLISH)
    store = open_store(plan.options.out)
    voiced = voice_language(plan, store, tmp_path / "work")
    originals = [item.segment_path for item in voiced.units]
    _garble(plan, voiced)
    fixed, result = hear_language(plan, voiced, store, tmp_path / "work", QASettings(policy="warn"))
    return plan, voiced, fixed, result, originals, tmp_path


def test_a_garbled_take_is_flagged_retried_and_replaced(heard):
    plan, _, fixed, result, originals, _ = heard
    first, second = result.cues
    assert not first.attempts[0][4] and "wer-high" in first.attempts[0][3]  # the garbled take failed
    assert len(first.attempts) >= 2 and first.passed and first.check.wer <= 0.3
    assert fixed.units[0].segment_path != originals[0]  # the kept take is the new render
    assert second.passed and len(second.attempts) == 1 and fixed.units[1].segment_path == originals[1]


def test_timing_checks_and_reports(heard):
    plan, _, _, result, _, _ = heard
    for cue in result.cues:
        assert abs(cue.onset_error_ms) <= 1.0 and cue.overrun_ms == 0 and cue.stretch >= 1.0
        assert cue.slot_ms[0] == cue.speech_ms[0]
    record = qa_record(plan, result)
    assert record["cues"] == 2 and record["failed"] == 0 and record["retried"] == 1
    assert record["takes"][0]["attempts"][0]["passed"] is False
    page = report_html(plan, result)
    assert "<svg" not in page and "data:image/svg+xml;base64," in page and page.count("<tr class=") == 2


def test_strict_refuses_while_a_take_fails(heard):
    plan, voiced, _, _, _, tmp_path = heard
    _garble(plan, voiced, 1)
    store = open_store(plan.options.out)
    _, result = hear_language(plan, voiced, store, tmp_path / "work-strict", QASettings(policy="strict",
                                                                                         max_attempts=1))
    assert [cue.passed for cue in result.cues] == [False, False]
    with pytest.raises(DubError, match="--qa strict: 2 take"):
        enforce([result])
    enforce([replace(result, policy="warn")])  # warn delivers


def test_a_voice_that_cannot_speak_the_language_is_flagged(tmp_path, voices_dir):
    plan = _plan(tmp_path, voices_dir, "es.srt", "1\n00:00:01,000 --> 00:00:03,500\nBuenos días a todos.\n")
    store = open_store(plan.options.out)
    voiced = voice_language(plan, store, tmp_path / "work")
    _, result = hear_language(plan, voiced, store, tmp_path / "work", QASettings(policy="warn", max_attempts=1))
    [cue] = result.cues
    assert "voice-language" in cue.flags and not cue.passed


UNSPEAKABLE = ("1\n00:00:01,000 --> 00:00:03,000\nThe library opens at nine.\n\n"
               "2\n00:00:04,000 --> 00:00:06,000\n你好世界\n\n"
               "3\n00:00:07,000 --> 00:00:09,000\nPlease return your books.\n")


def test_a_cue_the_engine_fails_on_costs_the_others_nothing(tmp_path, voices_dir):
    """The English voice gives no audio for a Chinese cue. QA off: one line naming the cue's line,
    after every other cue was voiced and cached. QA on: the cue is retried, left silent and flagged
    "engine-error", the others pass, and the manifest's cue entry says why."""
    from castline.dub.manifest import cue_entry

    plan = _plan(tmp_path, voices_dir, "en.srt", UNSPEAKABLE, qa="off")
    store = open_store(plan.options.out)
    with pytest.raises(Exception) as caught:
        voice_language(plan, store, tmp_path / "work")
    message = str(caught.value)
    assert "1 cue(s) could not be voiced" in message and "line 6" in message and "\n" not in message
    plan = _plan(tmp_path, voices_dir, "en.srt", UNSPEAKABLE, qa="warn")
    voiced = voice_language(plan, store, tmp_path / "work")
    assert [(item.takes_rendered, item.takes_reused) for item in voiced.units][::2] == [(0, 1), (0, 1)]
    assert voiced.units[1].error and voiced.units[1].speech_end_sample == voiced.units[1].speech_start_sample
    fixed, result = hear_language(plan, voiced, store, tmp_path / "work", QASettings(policy="warn"))
    first, failed, third = result.cues
    assert first.passed and third.passed
    assert not failed.passed and "engine-error" in failed.flags
    assert "no usable audio" in cue_entry(fixed.units[1], plan.sample_rate).error
    with pytest.raises(DubError):
        enforce([replace(result, policy="strict")])
