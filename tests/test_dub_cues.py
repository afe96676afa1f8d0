"""Cue files with real-world quirks parse into one typed model; malformed ones fail on a line."""

from __future__ import annotations

import pytest

from castline.dub.cues import load_cue_sheet, parse_cue_text
from castline.core.errors import DubError

CLEAN_SRT = """1
00:00:01,000 --> 00:00:03,000
Hola.

2
00:00:04,000 --> 00:00:06,500
¿Qué tal?
"""


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bom_and_crlf_give_the_same_sheet_as_clean_lf(tmp_path):
    clean = load_cue_sheet(_write(tmp_path, "a.srt", CLEAN_SRT.encode()))
    quirky = load_cue_sheet(_write(tmp_path, "b.srt", b"\xef\xbb\xbf" + CLEAN_SRT.replace("\n", "\r\n").encode()))
    old_mac = load_cue_sheet(_write(tmp_path, "c.srt", CLEAN_SRT.replace("\n", "\r").encode()))
    assert [(c.start_ms, c.end_ms, c.text) for c in quirky.cues] == [(c.start_ms, c.end_ms, c.text) for c in clean.cues]
    assert [(c.start_ms, c.text) for c in old_mac.cues] == [(1000, "Hola."), (4000, "¿Qué tal?")]
    assert clean.cues[1].end_ms == 6500 and clean.format == "srt" and not quirky.repairs


def test_missing_and_extra_blank_lines():
    text = ("\n\n1\n00:00:01,000 --> 00:00:02,000\nUno.\n2\n00:00:02,500 --> 00:00:03,000\nDos.\n\n\n\n"
            "3\n00:00:04,000 --> 00:00:05,000\nTres,\n\ny cuatro.\n\n\n")
    sheet = parse_cue_text(text, "x.srt")
    assert [c.text for c in sheet.cues] == ["Uno.", "Dos.", "Tres, y cuatro."]
    assert [c.source_id for c in sheet.cues] == ["1", "2", "3"]
    assert [c.line for c in sheet.cues] == [4, 7, 13]
    assert any("x.srt:16: text after a blank line" in repair for repair in sheet.repairs)


def test_markup_is_removed_and_speakers_come_from_prefixes_and_voice_spans():
    srt = ("1\n00:00:01,000 --> 00:00:02,000\n<i>ANA: <b>Hola</b> &amp; adiós</i>\n\n"
           "2\n00:00:03,000 --> 00:00:04,000\n{\\an8}<font color=\"#ffff00\">DR. LUIS: Bien.</font>\n\n"
           "3\n00:00:05,000 --> 00:00:06,000\n[MARTA] Vale.\n\n"
           "4\n00:00:07,000 --> 00:00:08,000\nAna: conocida.\n\n"
           "5\n00:00:09,000 --> 00:00:10,000\nNota: esto no es un hablante.\n")
    sheet = parse_cue_text(srt, "x.srt", known_speakers=["ana"])
    said = [(c.utterances[0].speaker, c.utterances[0].text) for c in sheet.cues]
    assert said == [("ANA", "Hola & adiós"), ("DR. LUIS", "Bien."), ("MARTA", "Vale."), ("Ana", "conocida."),
                    (None, "Nota: esto no es un hablante.")]
    vtt = ("WEBVTT\nLanguage: de\n\nNOTE a comment\nspanning lines\n\nintro\n00:01.000 --> 00:02.500 align:start\n"
           "<v.loud Hans Meier>Guten <c.yellow>Tag</c> <00:01.500>zusammen</v>\n")
    sheet = parse_cue_text(vtt, "x.vtt")
    assert sheet.format == "vtt" and sheet.language == "de"
    assert sheet.cues[0].source_id == "intro" and (sheet.cues[0].start_ms, sheet.cues[0].end_ms) == (1000, 2500)
    assert sheet.cues[0].utterances[0].speaker == "Hans Meier" and sheet.cues[0].text == "Guten Tag zusammen"


def test_two_speaker_dialogue_cue_is_two_utterances():
    sheet = parse_cue_text("1\n00:00:01,000 --> 00:00:04,000\n- ANA: ¿Vienes?\n- LUIS: Sí,\nahora mismo.\n", "x.srt")
    [cue] = sheet.cues
    assert [(u.speaker, u.text) for u in cue.utterances] == [("ANA", "¿Vienes?"), ("LUIS", "Sí, ahora mismo.")]
    dashes = parse_cue_text("1\n00:00:01,000 --> 00:00:04,000\n—¿Vienes?\n– Sí.\n", "x.srt")
    assert [u.text for u in dashes.cues[0].utterances] == ["¿Vienes?", "Sí."]


def test_sound_descriptions_are_not_spoken_and_empty_cues_are_skipped():
    sheet = parse_cue_text("1\n00:00:01,000 --> 00:00:02,000\n[música]\n\n2\n00:00:03,000 --> 00:00:04,000\n"
                           "♪ la la ♪\nHola (risas) amigo.\n", "x.srt")
    assert [c.text for c in sheet.cues] == ["Hola amigo."]
    assert sheet.cues[0].number == 1 and sheet.cues[0].source_id == "2"
    assert any("x.srt:2: cue with nothing to speak" in repair for repair in sheet.repairs)


def test_overlapping_zero_negative_and_unordered_cues_are_repaired():
    text = ("1\n00:00:05,000 --> 00:00:07,000\nTercero.\n\n"
            "2\n00:00:01,000 --> 00:00:03,500\nPrimero se solapa.\n\n"
            "3\n00:00:03,000 --> 00:00:03,000\nDuración cero.\n\n"
            "4\n00:00:08,000 --> 00:00:07,000\nNegativa.\n\n"
            "5\n00:00:09,000 --> 00:00:10,000\nJuntos A.\n\n"
            "6\n00:00:09,000 --> 00:00:11,000\nJuntos B.\n")
    sheet = parse_cue_text(text, "x.srt")
    slots = [(c.source_id, c.start_ms, c.end_ms) for c in sheet.cues]
    assert slots == [("2", 1000, 3000),            # overlap: ends where the next starts
                     ("3", 3000, 4000),            # zero: 14 chars -> min 1 s
                     ("1", 5000, 7000),
                     ("4", 8000, 9000),            # negative: estimate capped at the next start
                     ("5", 9000, 11000)]           # same start: merged into one dialogue cue
    assert [u.text for u in sheet.cues[-1].utterances] == ["Juntos A.", "Juntos B."]
    joined = "\n".join(sheet.repairs)
    for expected in ("not in time order", "x.srt:6: cue overlaps the next cue by 500 ms",
                     "x.srt:10: cue ends at its start", "x.srt:14: cue ends before its start",
                     "x.srt:22: cue starts together with the cue at line 18"):
        assert expected in joined
    assert [c.number for c in sheet.cues] == [1, 2, 3, 4, 5]


def test_short_timestamps_and_settings_after_the_timing():
    sheet = parse_cue_text("WEBVTT\n\n00:01.5 --> 00:02.25 line:0\nCorto.\n\n1:02:03.004 --> 1:02:04.000\nLargo.\n",
                           "x.vtt")
    assert [(c.start_ms, c.end_ms) for c in sheet.cues] == [(1500, 2250), (3723004, 3724000)]
    srt = parse_cue_text("1\n00:00:01,000 --> 00:00:02,000 X1:40 X2:600 Y1:20 Y2:50\nPos.\n", "x.srt")
    assert srt.cues[0].text == "Pos."


@pytest.mark.parametrize("data, line, expected", [
    (b"1\n00:00:01,000 -> 00:00:02,000\nHola\n", 2, "bad cue timing"),
    (b"just some text\nand more\n", None, "no cues found"),
    (b"1\n00:00:01,000 --> 00:00:02\xff000\nHola\n", 2, "not valid UTF-8"),
    (b"1\n00:00:01,000 --> 00:0x:02,000\nHola\n", 2, "bad cue timing"),
    (b"1\n00:00:01,000 --> 00:00:72,000\nHola\n", 2, "under 60"),
    (b"hello there\n1\n00:00:01,000 --> 00:00:02,000\nHola\n", 1, "text before the first cue"),
    (b"1\n00:00:01,000 --> 00:00:02,000\n[m\xc3\xbasica]\n", None, "no cue has any text"),
    (b"", None, "no cues found"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", None, "binary"),
    (b"\xff\xfe1\x00\n\x00", None, "UTF-16"),
])
def test_malformed_files_fail_with_one_line_naming_file_and_line(tmp_path, data, line, expected):
    path = _write(tmp_path, "bad.srt", data)
    with pytest.raises(DubError) as caught:
        load_cue_sheet(path)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert message.startswith(f"{path}:{line}:" if line else f"{path}")


def test_vtt_without_header_is_read_with_a_repair(tmp_path):
    sheet = load_cue_sheet(_write(tmp_path, "no-header.vtt", b"00:00:01.000 --> 00:00:02.000\nHallo.\n"))
    assert sheet.format == "vtt" and sheet.cues[0].text == "Hallo."
    assert "no WEBVTT header" in sheet.repairs[0]


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(DubError, match="not found"):
        load_cue_sheet(tmp_path / "nope.srt")
