"""Spoken-form normalisation (en, es, de) and QA scoring against the spoken form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from text_to_num import alpha2digit, text2num

from castline.qa.textnorm import normalise_for_wer
from castline.qa.wer import score
from castline.script.normalise import normalise


@pytest.mark.parametrize("language, written, spoken", [
    ("en", "42", "forty-two"),
    ("en", "12,000 people", "twelve thousand people"),
    ("en", "3.5", "three point five"),
    ("en", "the 3rd and 21st", "the third and twenty-first"),
    ("en", "in 1984", "in nineteen eighty-four"),
    ("en", "since 2005", "since two thousand and five"),
    ("en", "the 1990s", "the nineteen nineties"),
    ("en", "1984 votes", "one thousand nine hundred and eighty-four votes"),
    ("en", "on 2025-03-14", "on the fourteenth of March twenty twenty-five"),
    ("en", "March 3, 2025", "March third, twenty twenty-five"),
    ("en", "the 3 March", "the third of March"),
    ("en", "at 10:30", "at ten thirty"),
    ("en", "at 9:05 pm", "at nine oh five p m"),
    ("en", "at 7:00", "at seven o'clock"),
    ("en", "$9.99", "nine dollars ninety-nine cents"),
    ("en", "€5", "five euro"),
    ("en", "£1", "one pound sterling"),  # num2words' own currency name
    ("en", "$2 million", "two million dollars"),
    ("en", "40%", "forty percent"),
    ("en", "5 km", "five kilometers"),
    ("en", "1 kg", "one kilogram"),
    ("en", "Dr. Who, Mr. Smith", "Doctor Who, Mister Smith"),
    ("en", "apples, pears etc. Then", "apples, pears et cetera. Then"),
    ("en", "see No. 5", "see number five"),
    ("en", "No. 5 won.", "Number five won."),
    ("en", "No. Never.", "No. Never."),
    ("en", "agent 007", "agent 007"),
    ("en", "version 1.2.3", "version 1.2.3"),
    ("es", "42", "cuarenta y dos"),
    ("es", "1.250 personas", "mil doscientos cincuenta personas"),
    ("es", "3,5", "tres punto cinco"),
    ("es", "el 3 de marzo de 2025", "el tres de marzo de dos mil veinticinco"),
    ("es", "el 1 de mayo", "el primero de mayo"),
    ("es", "a las 10:30", "a las diez y treinta"),
    ("es", "9,99 €", "nueve euros con noventa y nueve céntimos"),
    ("es", "un 40 %", "un cuarenta por ciento"),
    ("es", "3 km", "tres kilómetros"),
    ("es", "llegó 1º y ella 2ª", "llegó primero y ella segunda"),
    ("es", "el Sr. García", "el señor García"),
    ("de", "42", "zweiundvierzig"),
    ("de", "1.250 Leute", "eintausendzweihundertfünfzig Leute"),
    ("de", "am 3. März 2025", "am dritten März zweitausendfünfundzwanzig"),
    ("de", "der 14. Juli", "der vierzehnte Juli"),
    ("de", "im Jahr 1984", "im Jahr neunzehnhundertvierundachtzig"),
    ("de", "um 10:30", "um zehn Uhr dreißig"),
    ("de", "9,99 €", "neun Euro und neunundneunzig Cent"),
    ("de", "40 %", "vierzig Prozent"),
    ("de", "3 km", "drei Kilometer"),
    ("de", "z. B. usw.", "zum Beispiel und so weiter."),
    ("fr", "42", "42"),
])
def test_tables_per_language(language, written, spoken):
    assert normalise(written, language).spoken == spoken


def test_edits_name_what_they_expanded():
    rewrite = normalise("In 1984 it cost $5, 40% of 10 km.", "en")
    assert [edit.rule for edit in rewrite.edits] == ["year", "currency", "percent", "unit"]
    assert [rewrite.written[e.start:e.end] for e in rewrite.edits] == ["1984", "$5", "40%", "10 km"]


integers = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=150, deadline=None)
@given(integers)
def test_english_numbers_round_trip_through_qa_normalisation(value):
    # QA's normaliser turns spelled numbers back into digits: the spoken form scores as the digits.
    spoken = normalise(str(value), "en").spoken
    assert not any(ch.isdigit() for ch in spoken)
    assert normalise_for_wer(spoken) == str(value)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=10**12 - 1))  # text2num 3.1 stops below a trillion
def test_english_numbers_round_trip_through_text2num(value):
    spoken = normalise(f"{value:,}", "en").spoken
    assert text2num(spoken.replace("-", " "), "en") == value


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_spanish_numbers_round_trip(value):
    written = f"{value:,}".replace(",", ".")
    assert text2num(normalise(written, "es").spoken, "es") == value


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=999_999))
def test_german_numbers_round_trip(value):
    # text2num 3.1 cannot read German "Million" compounds, so the property stops below a million.
    written = f"{value:,}".replace(",", ".")
    assert text2num(normalise(written, "de").spoken, "de") == value


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["en", "es"]))
def test_ordinals_round_trip(value, language):
    suffix = "th" if value % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    written = f"{value}{suffix}" if language == "en" else f"{value}º"
    spoken = normalise(written, language).spoken
    assert not any(ch.isdigit() for ch in spoken)
    if language == "en":  # text2num 3.1 misses some English ordinals ("sixtieth"); QA's reader does not
        assert normalise_for_wer(spoken) == normalise_for_wer(written)
    elif 3 <= value < 100 and value not in range(11, 20):  # text2num leaves "primero", "segundo" as words
        # num2words writes "décimoprimero" where text2num reads "undécimo", and text2num does not join
        # ordinals past 100 ("ducentésimo cuadragésimo"): the libraries limit the property here.
        assert alpha2digit(spoken, language, threshold=0) == f"{value}º"


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=31), st.integers(min_value=1, max_value=12))
def test_german_date_ordinals_round_trip(day, month):
    from castline.script.normalise import TABLES

    spoken = normalise(f"am {day}. {TABLES['de'].months[month - 1]}", "de").spoken
    assert alpha2digit(spoken, "de", threshold=0).startswith(f"am {day}.")


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1300, max_value=2099))  # QA reads "thirteen oh five"-style years from 13xx
def test_english_years_round_trip_through_qa_normalisation(year):
    spoken = normalise(f"in {year}", "en").spoken
    assert normalise_for_wer(spoken) == f"in {year}"


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=99_999), st.integers(min_value=0, max_value=99))
def test_english_money_round_trip_through_qa_normalisation(dollars, cents):
    written = f"${dollars}.{cents:02d}" if cents else f"${dollars}"
    assert normalise_for_wer(normalise(written, "en").spoken) == normalise_for_wer(written)


@pytest.mark.parametrize("language, script, heard", [
    ("en", "It was 42 km on March 3, 2025 at 10:30.", "It was 42 kilometers on March 3rd, 2025 at 10:30."),
    ("es", "Eran 42 km el 3 de marzo.", "Eran 42 kilómetros el 3 de marzo."),
    ("de", "Es waren 42 km und 40 %.", "Es waren 42 Kilometer und 40 Prozent."),
])
def test_qa_scores_a_correct_reading_of_the_spoken_form_as_no_error(language, script, heard):
    spoken = normalise(script, language).spoken
    assert score(spoken, heard, language).wer == 0.0


def test_qa_reads_spanish_and_german_digits_and_words_alike():
    assert normalise_for_wer("cuarenta y dos", "es") == normalise_for_wer("42", "es")
    assert normalise_for_wer("zweiundvierzig", "de") == normalise_for_wer("42", "de")
