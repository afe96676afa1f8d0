"""Translating a cue sheet for review: Apertium when its Debian packages are installed, and a
transformers Marian model (a tiny one built here, random weights: the plumbing, not quality)."""

from __future__ import annotations

import shutil

import pytest

from castline.core.errors import DubError
from castline.dub.cues import parse_cue_text
from castline.dub.translate import ApertiumTranslator, TransformersTranslator, translated_srt, translator_for

SHEET = ("1\n00:00:01,000 --> 00:00:02,500\nANA: Good morning.\n\n"
         "2\n00:00:03,000 --> 00:00:05,000\n- Where is the station?\n- LUIS: Over there.\n")


def _has_pair(pair: str) -> bool:
    return shutil.which("apertium") is not None and pair in ApertiumTranslator().pairs()


@pytest.mark.skipif(not _has_pair("eng-spa"), reason="apertium and apertium-eng-spa are not installed")
def test_apertium_translates_and_keeps_timing_dashes_and_speakers():
    sheet = parse_cue_text(SHEET, "en.srt")
    text = translated_srt(sheet, ApertiumTranslator(), "en", "es")
    again = parse_cue_text(text, "es.srt")
    assert [(c.start_ms, c.end_ms) for c in again.cues] == [(c.start_ms, c.end_ms) for c in sheet.cues]
    assert [[u.speaker for u in c.utterances] for c in again.cues] == [["ANA"], [None, "LUIS"]]
    assert again.cues[0].text == "Buenos días." and "Dónde" in again.cues[1].text  # rule-based: rough
    with pytest.raises(DubError, match="no Apertium pair for en → xx"):
        ApertiumTranslator().translate(["hello"], "en", "xx")


def _tiny_marian(folder):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<pad>", "</s>", "<unk>", "good", "morning", "where", "is", "the", "station", "over", "there",
             "buenos", "días", "dónde", "está", "la", "estación", "allí", ".", "?"]
    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.MarianConfig(vocab_size=len(words), d_model=16, encoder_layers=1, decoder_layers=1,
                                       encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                       decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=0,
                                       eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=1)
    transformers.MarianMTModel(config).save_pretrained(folder)
    return folder


def test_a_local_marian_model_translates_every_utterance_repeatably(tmp_path):
    folder = _tiny_marian(tmp_path / "marian")
    translator = translator_for(f"marian:{folder}")
    assert isinstance(translator, TransformersTranslator)
    translator = TransformersTranslator(str(folder), max_new_tokens=6)
    sheet = parse_cue_text(SHEET, "en.srt")
    first = translated_srt(sheet, translator, "en", "es")
    assert first == translated_srt(sheet, translator, "en", "es")  # greedy: repeatable
    assert first.count("-->") == 2 and "\n- " in first and "LUIS: " in first and "ANA: " in first
    with pytest.raises(DubError, match="translation model folder not found"):
        TransformersTranslator(str(tmp_path / "missing")).translate(["hi"], "en", "es")
    with pytest.raises(DubError, match="unknown translator"):
        translator_for("google")


@pytest.mark.skipif(not _has_pair("eng-spa"), reason="apertium and apertium-eng-spa are not installed")
def test_cli_translate_only_writes_the_sheet_and_stops(tmp_path, capsys):
    from castline_cli.main import main

    (tmp_path / "show.en.srt").write_text(SHEET, encoding="utf-8")
    code = main(["dub", "--translate-from", "en", "--cues", str(tmp_path / "show.en.srt"), "--lang", "es",
                 "--translate-only", "--out", str(tmp_path / "out")])
    assert code == 0 and "translated en → es (apertium)" in capsys.readouterr().out
    assert (tmp_path / "show.en.es.srt").read_text(encoding="utf-8").startswith("1\n00:00:01,000 --> 00:00:02,500\n")
    assert not (tmp_path / "out").exists()
