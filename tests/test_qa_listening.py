"""Quick and careful listening: the settings' arithmetic, and how check_takes uses the two."""

from types import SimpleNamespace

import numpy as np
import pytest

from castline.qa import chunk_check
from castline.qa.asr import Transcript
from castline.qa.chunk_check import Take, check_takes
from castline.qa.listening import CAREFUL, Listening, quick_listening
from castline.qa.settings import QASettings

RATE = 24_000


def test_listening_arithmetic():
    quick = quick_listening(1.5)
    assert quick.hop_samples == 240 and quick.exact_speed == 1.5 and quick.frames == 2000
    assert quick.audio_per_window_s == pytest.approx(27.75)
    assert CAREFUL.hop_samples == 160 and CAREFUL.frames == 3000 and CAREFUL.audio_per_window_s == 29.0
    assert quick_listening(1.0) is CAREFUL
    assert quick_listening(1.33).exact_speed == pytest.approx(213 / 160)  # the hop is whole samples


@pytest.mark.parametrize("speed, window_s, content_s", [(0.9, 20, 18), (2.5, 20, 18), (1.5, 31, 29), (1.5, 20, 21)])
def test_impossible_listening_is_refused(speed, window_s, content_s):
    with pytest.raises(ValueError):
        Listening(speed, window_s, content_s)


def test_the_listen_speed_is_validated_and_part_of_the_qa_fingerprint():
    with pytest.raises(ValueError, match="--qa-listen-speed"):
        QASettings(listen_speed=2.5)
    assert QASettings(listen_speed=1.5).fingerprint() != QASettings(listen_speed=1.0).fingerprint()


def _fake_hearing(monkeypatch, heard_quickly: dict[int, str]):
    """hear_clips stand-in: a quick listen hears ``heard_quickly[clip]`` (default: the script),
    a careful one always hears the script. Records (listening speed, clips) per call."""
    import castline.qa.asr as asr
    import castline.qa.packing as packing

    calls = []
    monkeypatch.setattr(asr, "get_transcriber",
                        lambda model=None, device="cpu": SimpleNamespace(unload_when_idle=lambda: True))
    monkeypatch.setattr(chunk_check, "_signal_findings",
                        lambda take, rate: chunk_check._Signals((), np.zeros(4, np.float32)))

    def hear(clips, sample_rate, transcriber, *, language, listening):
        calls.append((listening.speed, [TEXTS.index(TEXT_OF[id(c)]) for c in clips]))
        out = []
        for clip in clips:
            index = TEXTS.index(TEXT_OF[id(clip)])
            text = TEXT_OF[id(clip)] if listening == CAREFUL else heard_quickly.get(index, TEXT_OF[id(clip)])
            out.append(Transcript(text=text, language="en", words=(), no_speech_prob=None, avg_logprob=None,
                                  duration_s=clip.size / sample_rate))
        return out

    monkeypatch.setattr(packing, "hear_clips", hear)
    return calls


TEXTS = ["The committee met on Tuesday.", "Bees dance to show the way.", "Caves lie under the desert."]
TEXT_OF: dict[int, str] = {}


def _takes():
    takes = []
    for number, text in enumerate(TEXTS):
        audio = np.full(RATE, 0.01 * (number + 1), np.float32)
        TEXT_OF[id(audio)] = text
        takes.append(Take(audio, text, "hibari", seed=number))
    return takes


def test_a_take_the_quick_listen_mishears_is_judged_on_a_careful_listen(monkeypatch):
    calls = _fake_hearing(monkeypatch, {1: "Peace dents to throw the whey."})
    checks = check_takes(_takes(), RATE, language="en", settings=QASettings())
    assert calls == [(1.5, [0, 1, 2]), (1.0, [1])]  # only the misheard take is heard again
    assert all(check.passed for check in checks)
    assert checks[1].transcript == TEXTS[1] and checks[1].wer == 0.0
    assert [dict(check.metrics)["asr_careful_relisten"] for check in checks] == [0.0, 1.0, 0.0]


def test_takes_that_pass_the_quick_listen_are_heard_once_and_speed_one_is_careful_only(monkeypatch):
    calls = _fake_hearing(monkeypatch, {})
    check_takes(_takes(), RATE, language="en", settings=QASettings())
    assert calls == [(1.5, [0, 1, 2])]
    calls.clear()
    check_takes(_takes(), RATE, language="en", settings=QASettings(listen_speed=1.0))
    assert calls == [(1.0, [0, 1, 2])]
