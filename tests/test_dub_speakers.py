"""Who speaks each part of a dialogue cue: ``- line`` / ``- line`` is two people, taken from the
neighbouring cues when they alternate, else two distinct voices; ``<v>`` spans per line."""

from __future__ import annotations

import numpy as np
import pytest

from castline.dub.cast import DEFAULT_SPEAKER, LanguageCast
from castline.dub.cues import parse_cue_text
from castline.dub.options import DubOptions
from castline.dub.plan import SECOND_SPEAKER, cue_speakers, prepare_dub
from castline.engines.espeak import EspeakEngine, espeak_binary

needs_espeak = pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed")


def _srt(*texts: str) -> str:
    return "\n".join(f"{n}\n00:00:{2 * n:02d},000 --> 00:00:{2 * n + 1:02d},500\n{text}\n"
                     for n, text in enumerate(texts, 1))


def test_alternating_neighbours_name_the_two_parts():
    sheet = parse_cue_text(_srt("ANA: ¿Vienes?", "- ¿Ahora?\n- Sí, ahora.", "LUIS: Vale."), "es.srt")
    # ANA spoke before, LUIS speaks after: the dialogue alternates LUIS, ANA.
    assert cue_speakers(sheet, None)[2] == [("LUIS", "alternation"), ("ANA", "alternation")]
    assert cue_speakers(sheet, None)[1] == [("ANA", "file")]


def test_without_alternation_the_parts_get_distinct_speakers():
    sheet = parse_cue_text(_srt("Hola.", "- ¿Lista?\n- Siempre.", "Adiós."), "es.srt")
    assert cue_speakers(sheet, None)[2] == [(DEFAULT_SPEAKER, "default"), (SECOND_SPEAKER, "distinct")]
    named = parse_cue_text(_srt("ANA: Hola.", "- ANA: ¿Lista?\n- Siempre.", "ANA: Adiós."), "es.srt")
    first, second = cue_speakers(named, None)[2]
    assert first == ("ANA", "file") and second[0] != "ANA" and second[1] == "distinct"


def test_cast_cue_map_and_voice_spans_per_line():
    sheet = parse_cue_text("WEBVTT\n\n00:01.000 --> 00:03.000\n<v Anna>Guten Morgen.\n<v Lukas>Morgen!\n\n"
                           "c2\n00:04.000 --> 00:05.000\nJa.\n", "de.vtt")
    assert [(u.speaker, u.text) for u in sheet.cues[0].utterances] == [("Anna", "Guten Morgen."),
                                                                        ("Lukas", "Morgen!")]
    cast = LanguageCast(language="de", cue_speakers=(("c2", "Lukas"),))
    assert cue_speakers(sheet, cast)[2] == [("Lukas", "cast")]


@needs_espeak
def test_a_two_speaker_cue_gets_two_voices(tmp_path, voices_dir):
    (tmp_path / "es.srt").write_text(_srt("Hola a todos.", "- ¿Lista?\n- Siempre lista."), encoding="utf-8")
    [plan] = prepare_dub(DubOptions(cues=(str(tmp_path / "es.srt"),), voices_dir=str(voices_dir),
                                    out=str(tmp_path / "out")))
    first, second = [unit for unit in plan.units if unit.cue == 2]
    assert (first.parts, first.part, second.part) == (2, 0, 1)
    assert first.speaker != second.speaker and first.voice_id != second.voice_id
    assert second.speaker_from == "distinct"
    voices = {voice.voice_id: voice for voice in plan.voices}
    assert voices[first.voice_id].engine_voice != voices[second.voice_id].engine_voice
    # …and they sound different: the same words in the two voices are different audio.
    engine = EspeakEngine()
    [a] = engine.synthesize(["Siempre lista."], voices[first.voice_id], [0])
    [b] = engine.synthesize(["Siempre lista."], voices[second.voice_id], [0])
    assert a.size != b.size or not np.allclose(a, b)
