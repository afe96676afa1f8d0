"""Pronunciation lexicons: YAML and PLS files, rule order, options, phonemes, and the check report."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings, strategies as st

from castline.core.errors import CastlineError
from castline.script.lexicon import (LexiconError, LexiconRule, apply_lexicons,
                                     ipa_to_misaki, load_lexicon, load_lexicons, parse_lexicon_yaml,
                                     phoneme_markup)
from castline.script.lexicon_check import check_episode
from castline.script.model import CastEntry, Episode, EpisodeMeta, SourceRef, Turn
from castline.script.spoken import spoken_form


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


NAMES = """\
rules:
  - grapheme: Nguyen
    alias: Win
  - grapheme: SQL
    alias: sequel
    case_sensitive: true
  - grapheme: New York
    alias: Noo York
  - grapheme: York
    alias: Yorrk
"""


@pytest.fixture
def names(tmp_path):
    return load_lexicon(write(tmp_path, "names.yaml", NAMES))



def test_alias_rules_case_and_boundaries(names):
    rewrite = apply_lexicons("Mr nguyen runs SQL and sql in New York, not Yorkshire.", [names])
    assert rewrite.spoken == "Mr Win runs sequel and sql in Noo York, not Yorkshire."
    assert rewrite.written == "Mr nguyen runs SQL and sql in New York, not Yorkshire."
    assert [rule.split(" ", 1)[1] for rule in rewrite.rules] == ["Nguyen", "SQL", "New York"]
    assert rewrite.rules[0].startswith("names.yaml:2 ")


def test_longest_match_wins_over_file_order(tmp_path):
    short_first = load_lexicon(write(tmp_path, "a.yaml", "rules:\n  - {grapheme: York, alias: A}\n"))
    long_later = load_lexicon(write(tmp_path, "b.yaml", "rules:\n  - {grapheme: New York, alias: B}\n"))
    assert apply_lexicons("in New York", [short_first, long_later]).spoken == "in B"


def test_equal_length_first_lexicon_wins(tmp_path):
    first = load_lexicon(write(tmp_path, "first.yaml", "rules:\n  - {grapheme: Xinran, alias: Shin-ran}\n"))
    second = load_lexicon(write(tmp_path, "second.yaml", "rules:\n  - {grapheme: Xinran, alias: Zin-ran}\n"))
    assert apply_lexicons("Xinran", [first, second]).spoken == "Shin-ran"
    assert apply_lexicons("Xinran", [second, first]).spoken == "Zin-ran"


def test_file_options_and_word_boundaries_off(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "opts.yaml", """\
case_sensitive: true
word_boundaries: false
rules:
  - {grapheme: ing, alias: ING}
  - {grapheme: Cat, alias: kat, case_sensitive: false, word_boundaries: true}
"""))
    assert apply_lexicons("singing cat Cats CAT", [lexicon]).spoken == "sINGING kat Cats kat"


def test_output_is_not_matched_again(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "loop.yaml", "rules:\n  - {grapheme: a, alias: b}\n  - {grapheme: b, alias: c}\n"))
    assert apply_lexicons("a b", [lexicon]).spoken == "b c"


def test_language_and_voices_filter(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "de.yaml",
                                 "language: de\nvoices: [anna]\nrules:\n  - {grapheme: Chor, alias: Kor}\n"))
    assert apply_lexicons("Chor", [lexicon], voice_id="anna", language="de-DE").spoken == "Kor"
    assert apply_lexicons("Chor", [lexicon], voice_id="ben", language="de").spoken == "Chor"
    assert apply_lexicons("Chor", [lexicon], voice_id="anna", language="en").spoken == "Chor"


def test_written_span_maps_spoken_slices_back(names):
    rewrite = apply_lexicons("Ask Nguyen. Use SQL now.", [names])
    assert rewrite.spoken == "Ask Win. Use sequel now."
    cut = rewrite.spoken.index("Use")
    first, second = rewrite.sub(0, cut - 1), rewrite.sub(cut, len(rewrite.spoken))
    assert (first.written, first.spoken, first.rules) == ("Ask Nguyen.", "Ask Win.", (rewrite.rules[0],))
    assert (second.written, second.spoken) == ("Use SQL now.", "Use sequel now.")
    # A cut inside a replacement gives the whole written word to the earlier slice.
    inside = rewrite.spoken.index("sequel") + 3
    assert rewrite.written_span(0, inside) == (0, rewrite.written.index(" now"))


PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme>
    <grapheme>W3C</grapheme>
    <alias>World Wide Web Consortium</alias>
  </lexeme>
  <lexeme>
    <grapheme>Nguyen</grapheme>
    <phoneme>wɪn</phoneme>
  </lexeme>
  <lexeme>
    <grapheme>tomato</grapheme>
    <grapheme>Tomato</grapheme>
    <phoneme>təˈmɑːtoʊ</phoneme>
    <alias>tomahto</alias>
  </lexeme>
</lexicon>
"""


def test_pls_alias_and_phoneme_entries(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "w3c.pls", PLS))
    assert lexicon.language == "en-US"
    assert [(r.grapheme, r.alias, r.phoneme, r.line) for r in lexicon.rules] == [
        ("W3C", "World Wide Web Consortium", None, 4), ("Nguyen", None, "wɪn", 8),
        ("tomato", "tomahto", "təˈmɑːtoʊ", 12), ("Tomato", "tomahto", "təˈmɑːtoʊ", 12)]
    assert all(rule.case_sensitive and rule.word_boundaries for rule in lexicon.rules)
    text = "The W3C met Nguyen over a tomato."
    piper = apply_lexicons(text, [lexicon], engine="piper")
    assert piper.spoken == "The World Wide Web Consortium met [[ wɪn ]] over a [[ təˈmɑːtoʊ ]]."
    assert piper.reference == "The World Wide Web Consortium met Nguyen over a tomahto."
    hibari = apply_lexicons(text, [lexicon], engine="hibari")
    assert "[Nguyen](/wɪn/)" in hibari.spoken and "[tomato](/təˈmɑtO/)" in hibari.spoken


def test_phoneme_only_rule_warns_for_text_only_engines(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "w3c.pls", PLS))
    with pytest.warns(UserWarning, match=r"w3c\.pls:8: rule 'Nguyen' gives only a phoneme \(ipa\), which engine "
                                         r"'vibevoice' cannot take"):
        rewrite = apply_lexicons("Nguyen ate a tomato", [lexicon], engine="vibevoice")
    assert rewrite.spoken == "Nguyen ate a tomahto"
    with pytest.warns(UserWarning, match="espeak"):
        apply_lexicons("Nguyen", [lexicon], engine="espeak")  # espeak-ng takes x-espeak, not IPA


def test_espeak_takes_its_own_phoneme_alphabet(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "es.yaml",
                                 "alphabet: x-espeak\nrules:\n  - {grapheme: Nguyen, phoneme: w'In}\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert apply_lexicons("Hi Nguyen", [lexicon], engine="espeak").spoken == "Hi [[w'In]]"


def test_which_engines_take_phonemes():
    rule = LexiconRule("Nguyen", None, "wɪn", "ipa", True, True, "x.pls", 1)
    assert phoneme_markup("piper", rule) == "[[ wɪn ]]"
    assert phoneme_markup("hibari", rule) == "[Nguyen](/wɪn/)"
    for engine in ("espeak", "vibevoice", "pocket-tts", None):
        assert phoneme_markup(engine, rule) is None
    assert ipa_to_misaki("ˈdʒeɪsən") == "ˈʤAsən"


@pytest.mark.parametrize("text, message", [
    ("rules:\n  - {grapheme: X}\n", r"bad\.yaml:2: rules\[0\]: needs an 'alias' or a 'phoneme'"),
    ("rules:\n  - {alias: X}\n", r"bad\.yaml:2: rules\[0\]: missing 'grapheme'"),
    ("rules:\n  - grapheme: X\n    alias: Y\n    colour: red\n", r"bad\.yaml:4: rules\[0\]\.colour: unknown key"),
    ("rules:\n  - {grapheme: X, alias: Y, case_sensitive: maybe}\n",
     r"bad\.yaml:2: rules\[0\]\.case_sensitive: must be true or false"),
    ("rules: {grapheme: X}\n", r"bad\.yaml:1: rules: must be a list of rules"),
    ("language: en\n", r"bad\.yaml:1: missing 'rules'"),
    ("rules:\n  - {grapheme: X, alias: [Y]\n", r"bad\.yaml:\d: invalid YAML"),
    ("rules:\n  - {grapheme: '', alias: Y}\n", r"bad\.yaml:2: rules\[0\]\.grapheme: is empty"),
])
def test_yaml_errors_name_file_line_and_field(tmp_path, text, message):
    with pytest.raises(LexiconError, match=message):
        load_lexicon(write(tmp_path, "bad.yaml", text))


@pytest.mark.parametrize("text, message", [
    ('<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">\n'
     '<lexeme><grapheme>A</grapheme>\n</lexicon>', r"bad\.pls:3: invalid XML: mismatched tag"),
    ('<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">\n'
     '<lexeme>\n<alias>B</alias></lexeme></lexicon>', r"bad\.pls:2: <lexeme> has no <grapheme>"),
    ('<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">\n'
     '<lexeme><grapheme>A</grapheme></lexeme></lexicon>', r"bad\.pls:2: <lexeme> has no <alias> or <phoneme>"),
    ('<lexicon xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"/>', r"bad\.pls:1: lexicon@version"),
    ('<dictionary/>', r"bad\.pls:1: root element must be <lexicon"),
])
def test_pls_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(LexiconError, match=message):
        load_lexicon(write(tmp_path, "bad.pls", text))


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(CastlineError, match=r"nope\.yaml: no such lexicon file"):
        load_lexicon(tmp_path / "nope.yaml")


def test_load_lexicons_keeps_first_mention(tmp_path, names):
    path = tmp_path / "names.yaml"
    loaded = load_lexicons([path, str(path)])
    assert len(loaded) == 1 and loaded[0].digest


def test_lexicon_beats_normalisation(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "brands.yaml", "rules:\n  - {grapheme: 3M, alias: three em}\n"))
    rewrite = spoken_form("3M sold 40 units", [lexicon], normalise=True)
    assert rewrite.spoken == "three em sold forty units"
    assert [edit.kind for edit in rewrite.edits] == ["lexicon", "normalise"]


def _episode(texts):
    turns = tuple(Turn(i, "host", text, SourceRef("show.yaml", 10 + i)) for i, text in enumerate(texts))
    return Episode(EpisodeMeta("ep", "Ep"), (CastEntry("host", "heart", "Host"),), turns)


def test_lexicon_check_report(names):
    episode = _episode(["Nguyen and NASA met at 10:30 in Pаris.", "NASA paid $5 to Zxqvbr."])
    known = {"hibari": lambda word: word.lower() not in {"zxqvbr"}}
    report = check_episode(episode, [names], engines={"host": "hibari"}, voices={"host": "heart"},
                           vocabulary=known)
    rules = report.of_kind("rule")
    assert [(f.written, f.spoken, f.where) for f in rules] == [("Nguyen", "Win", "show.yaml:10")]
    expansions = {(f.written, f.spoken) for f in report.of_kind("expansion")}
    assert expansions == {("10:30", "ten thirty"), ("$5", "five dollars")}
    caps = report.of_kind("all-caps")
    assert [(f.written, f.count) for f in caps] == [("NASA", 2)]
    assert [f.written for f in report.of_kind("mixed-script")] == ["Pаris"]
    assert [f.written for f in report.of_kind("out-of-vocabulary")] == ["Zxqvbr"]
    text = "\n".join(report.lines())
    assert "Nguyen → Win  (show.yaml:10)" in text and "NASA ×2" in text


def test_lexicon_check_without_normalisation_lists_what_the_engine_reads(names):
    report = check_episode(_episode(["It cost $5."]), [names], normalise=False)
    assert [(f.written, f.spoken) for f in report.of_kind("left-as-written")] == [("$5", "five dollars")]
    assert not report.of_kind("expansion")


def test_lexicon_check_lists_phoneme_rules_an_engine_cannot_take(tmp_path):
    lexicon = load_lexicon(write(tmp_path, "w3c.pls", PLS))
    report = check_episode(_episode(["Nguyen is here."]), [lexicon], engines={"host": "vibevoice"})
    assert [f.written for f in report.of_kind("phoneme-skipped")] == ["Nguyen"]


_PIECES = ["Nguyen", "SQL", "New York", "42", "$9.99", "March 3, 2025", "10:30", "Dr.", "word", "words",
           "and", "the", ".", ",", "!", "?", "Yorkshire", "1,250.5", "40%", "5 km"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=60), st.integers(min_value=12, max_value=80))
def test_chunks_of_spoken_text_map_back_to_the_written_text(pieces, max_chars):
    from castline.render.chunking import plan_chunks

    names = parse_lexicon_yaml(NAMES, "names.yaml")
    text = " ".join(pieces)
    turn = Turn(0, "host", text, SourceRef("x.yaml", 1))
    episode = Episode(EpisodeMeta("ep", "Ep"), (CastEntry("host", "heart", "Host"),), (turn,))
    rewrite = spoken_form(text, [names], normalise=True)
    chunks = plan_chunks(episode, max_chars=max_chars, spoken=lambda _: rewrite)
    position = 0
    for chunk in chunks:
        assert chunk.text == text[chunk.char_start:chunk.char_end]
        assert chunk.char_start >= position
        position = chunk.char_end
        assert len(chunk.spoken_text) <= max_chars
    assert " ".join(chunk.spoken_text for chunk in chunks).split() == rewrite.spoken.split()
