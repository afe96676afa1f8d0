"""Text normalisation for WER and the WER score itself (no models: fast)."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castline.qa.textnorm import normalise_for_wer
from castline.qa.wer import TRUNCATION_FRACTION, score


@pytest.mark.parametrize("text, expected", [
    ("Hello,   World!", "hello world"),
    ("  \t\n ", ""),
    ("", ""),
    ("Don't stop—it's “fine”, isn’t it?", "don't stop it's fine isn't it"),
    ("'Quoted' words' edges", "quoted words edges"),
    ("well-known, state-of-the-art", "well known state of the art"),
    ("Rock 'n' roll…", "rock n roll"),
    ("Café naïve résumé", "cafe naive resume"),
    ("O'Brien's dog", "o'brien's dog"),
    ("snake_case and C++", "snake case and c"),
    # numbers: digits and spelled-out forms end as the same digit token
    ("12,000", "12000"),
    ("twelve thousand", "12000"),
    ("1,234,567", "1234567"),
    ("one million two hundred thirty-four thousand five hundred sixty-seven", "1234567"),
    ("one hundred and five", "105"),
    ("a hundred and fifty", "150"),
    ("twenty-five hundred", "2500"),
    ("3.5", "3.5"),
    ("three point five", "3.5"),
    ("three point one four", "3.14"),
    ("1.5 million", "1500000"),
    ("one point five million", "1500000"),
    ("3rd", "3rd"),
    ("third", "3rd"),
    ("twenty-first", "21st"),
    ("the 101st", "the 101st"),
    ("one hundred and first", "101st"),
    ("11th 12th 13th 22nd", "11th 12th 13th 22nd"),
    ("eleventh twelfth thirteenth twenty second", "11th 12th 13th 22nd"),
    ("2025", "2025"),
    ("twenty twenty-five", "2025"),
    ("two thousand twenty five", "2025"),
    ("two thousand and twenty-five", "2025"),
    ("nineteen eighty-four", "1984"),
    ("nineteen oh five", "1905"),
    ("nineteen hundred", "1900"),
    ("the 1990s", "the 1990s"),
    ("the nineteen nineties", "the 1990s"),
    ("the '90s and the 90's", "the 90s and the 90s"),
    ("the nineties", "the 90s"),
    ("40%", "40 percent"),
    ("forty percent", "40 percent"),
    ("forty per cent", "40 percent"),
    ("3.5 %", "3.5 percent"),
    ("$9.99", "9 dollars 99 cents"),
    ("nine dollars and ninety-nine cents", "9 dollars 99 cents"),
    ("$12,000", "12000 dollars"),
    ("$1", "1 dollar"),
    ("$0.99", "99 cents"),
    ("$3.5", "3 dollars 50 cents"),
    ("$1.01", "1 dollar 1 cent"),
    ("$2.5 million", "2500000 dollars"),
    ("£3.50", "3 pounds 50 pence"),
    ("€20", "20 euros"),
    ("10:30", "10 30"),
    ("ten thirty", "10 30"),
    ("10:05", "10 oh 5"),
    ("ten oh five", "10 oh 5"),
    ("10:00", "10"),
    ("ten o'clock", "10"),
    ("zero", "0"),
    ("zero point five", "0.5"),
    ("0.5", "0.5"),
    ("zero zero seven", "0 0 7"),
    ("007", "007"),
    ("one two three", "1 2 3"),
    ("1, 2, 3", "1 2 3"),
    ("version 1.2.3", "version 1 2 3"),
    ("thousands of people", "thousands of people"),
    ("hundreds", "hundreds"),
    ("the point is", "the point is"),
    ("twenty one twenty", "21 20"),
    # abbreviations
    ("Dr. Smith", "doctor smith"),
    ("Mr. and Mrs. Jones", "mister and missus jones"),
    ("Ms. Lee", "ms lee"),
    ("St. Louis, Saint Louis, Main Street", "st louis st louis main st"),
    ("cats vs. dogs", "cats versus dogs"),
    ("apples, pears, etc.", "apples pears et cetera"),
    ("e.g. this, i.e. that", "for example this that is that"),
    ("OK, okay, o.k.", "okay okay okay"),
    ("The U.S. at 5 p.m.", "the us at 5 pm"),
    ("rock & roll", "rock and roll"),
    # British spellings
    ("my favourite colours", "my favorite colors"),
    ("the neighbour organised a programme at the theatre", "the neighbor organized a program at the theater"),
    ("hours of our tour, four", "hours of our tour 4"),
])
def test_normalise(text, expected):
    assert normalise_for_wer(text) == expected


@pytest.mark.parametrize("written, spoken", [
    ("Dr. Smith paid $12,000 on the 3rd of March.", "Doctor Smith paid twelve thousand dollars on the third of March."),
    ("In 2025, about 40% of listeners", "In twenty twenty-five, about forty percent of listeners"),
    ("In 2025", "in two thousand and twenty five"),
    ("It costs $9.99.", "It costs nine dollars and ninety-nine cents"),
    ("Pi is about 3.14", "pi is about three point one four"),
    ("We met at 10:30 in the 1990s.", "we met at ten thirty in the nineteen nineties"),
    ("Mr. Jones, it's OK.", "Mister Jones, it's okay."),
    ("e.g. the 21st century", "for example, the twenty-first century"),
    ("1,000,000 views", "one million views"),
    ("100 people", "a hundred people"),
])
def test_written_and_spoken_forms_compare_equal(written, spoken):
    assert normalise_for_wer(written) == normalise_for_wer(spoken)
    assert score(written, spoken).wer == 0.0


def test_spanish_and_german_spell_numbers_then_lose_case_and_punctuation():
    assert normalise_for_wer("¡Hola, Señor García! ¿Qué tal? 12,5 %", language="es") == \
        "hola señor garcía qué tal doce punto cinco por ciento"
    assert normalise_for_wer("Dr. Müller", language="de") == "doktor müller"
    assert normalise_for_wer("Bonjour, Monsieur! 12,5 %", language="fr") == "bonjour monsieur 12 5"


_WORDS = ["one", "twenty", "nineteen", "hundred", "thousand", "million", "first", "nineties", "hundreds", "point",
          "oh", "and", "a", "zero", "per", "cent", "dollars", "cents", "dr", "st.", "e.g.", "okay", "colour", "$",
          "%", "12,000", "3.5", "3rd", "1990s", "'90s", "10:05", "$9.99", "£3.50", "—", "'", ".", ",", "o'clock",
          "1.2.3", "007", "Mrs.", "café", "x"]
_TOKEN = st.one_of(st.sampled_from(_WORDS), st.text(max_size=4),
                   st.from_regex(r"[$£€]?\d{1,4}([.,:]\d{1,3})?(%|st|nd|rd|th|s|'s)?", fullmatch=True))
_TEXT = st.lists(_TOKEN, max_size=12).map(" ".join) | st.lists(_TOKEN, max_size=6).map("".join) | st.text()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT, st.sampled_from(["en", "es"]))
def test_normalise_is_idempotent_and_self_scores_zero(text, language):
    once = normalise_for_wer(text, language)
    assert normalise_for_wer(once, language) == once
    assert "  " not in once and once == once.strip()
    assert score(text, text, language).wer == 0.0


def test_score_counts_substitutions_deletions_insertions():
    result = score("the cat sat on the mat", "the cat sat on a mat today")
    assert (result.substitutions, result.deletions, result.insertions, result.hits) == (1, 0, 1, 5)
    assert result.reference_words == 6 and result.hypothesis_words == 7
    assert result.wer == pytest.approx(2 / 6)
    assert result.coverage == 1.0 and not result.truncated


def test_score_normalises_both_sides():
    result = score("Dr. Smith paid $12,000.", "doctor smith paid twelve thousand dollars")
    assert result.wer == 0.0
    assert result.normalised_reference == result.normalised_hypothesis == "doctor smith paid 12000 dollars"


def test_empty_transcript_is_total_loss_and_truncated():
    result = score("Some words were written here.", "   ")
    assert result.wer == 1.0 and result.truncated and result.coverage == 0.0
    assert result.deletions == result.reference_words == 5
    punctuation_only = score("Some words.", "...")
    assert punctuation_only.wer == 1.0 and punctuation_only.truncated


def test_empty_reference():
    assert score("", "").wer == 0.0
    hallucinated = score("...", "thank you")
    assert math.isinf(hallucinated.wer) and hallucinated.insertions == 2 and not hallucinated.truncated


def test_prefix_transcript_is_truncated_and_coverage_is_the_prefix():
    words = "we walked down to the river and then along the bank until the light went down".split()
    assert len(words) == 16
    half = score(" ".join(words), " ".join(words[:8]))
    assert half.truncated and half.trailing_deletions == 8 and half.coverage == 0.5
    nearly = score(" ".join(words), " ".join(words[:15]))
    assert not nearly.truncated and nearly.trailing_deletions == 1


def test_truncation_threshold_and_minimum_words():
    words = [f"w{index}" for index in range(20)]
    cut = math.ceil(TRUNCATION_FRACTION * 20)
    assert score(" ".join(words), " ".join(words[:-cut])).truncated
    assert not score(" ".join(words), " ".join(words[:-(cut - 1)])).truncated
    # A short line missing only its last word is a misheard word, not a truncated render.
    assert not score("alpha beta gamma delta", "alpha beta gamma").truncated
    assert score("alpha beta gamma delta", "alpha beta").truncated


def test_deletions_in_the_middle_are_not_truncation():
    reference = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    result = score(reference, "alpha beta iota kappa")
    assert result.deletions == 6 and result.trailing_deletions == 0 and not result.truncated
    assert result.coverage == 1.0


def test_a_garbled_tail_before_the_cut_still_counts_as_truncated():
    reference = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"
    result = score(reference, "alpha beta gamma delta epsilon zebra")
    assert result.substitutions == 1 and result.trailing_deletions == 6 and result.truncated
    assert result.coverage == pytest.approx(5 / 12)


# --- forms that differ between script and transcript without being errors ------------------------

@pytest.mark.parametrize("script, heard", [
    # hyphenation and compounds: closed on one side, open or hyphenated on the other
    ("A non-linear model.", "A nonlinear model."),
    ("A nonlinear model.", "a non-linear model"),
    ("We do this every day.", "We do this everyday."),
    ("It is a well-known co-operative.", "It is a wellknown cooperative."),
    ("Order from the on-line shop by e-mail.", "Order from the online shop by email."),
    ("You cannot go.", "You can not go."),
    ("You can't go.", "You cannot go."),
    ("the state-of-the-art grandmother", "the state of the art grand mother"),
    # contractions, both ways; an ambiguous 'd or 's takes the form the other side has
    ("Don't stop, it's fine.", "Do not stop, it is fine."),
    ("We're sure they've gone and I'm late.", "We are sure they have gone and I am late."),
    ("I'd gone home; I'd go again.", "I had gone home; I would go again."),
    ("It's been a while. Let's go, we won't wait.", "It has been a while. Let us go, we will not wait."),
    ("She isn't here and he'll know.", "She is not here and he will know."),
    # spelling variants
    ("She learnt it towards noon, amongst friends.", "She learned it toward noon among friends."),
    ("The dialogue was alright, focussed on the colour grey.", "The dialog was all right, focused on the color gray."),
])
def test_script_and_transcript_forms_score_zero(script, heard):
    assert score(script, heard).wer == 0.0
    assert score(heard, script).wer == 0.0


@pytest.mark.parametrize("script, heard, errors", [
    ("A non-linear model.", "A linear model.", 1),            # a dropped prefix is still an error
    ("Don't stop now.", "Do stop now.", 1),                   # a lost "not" still counts
    ("We do this every day.", "We do this every way.", 1),
    ("John's car is red.", "John is car is red.", 2),         # possessives are not contractions
    ("The nonlinear model failed.", "The non linear model passed.", 1),
])
def test_real_differences_still_count(script, heard, errors):
    result = score(script, heard)
    assert result.substitutions + result.deletions + result.insertions == errors


def test_reconcile_is_a_fixed_point():
    from castline.qa.textnorm import reconcile

    pairs = [("the non linear model", "the nonlinear model"), ("do not stop", "don't stop"),
             ("every day we cannot", "everyday we can not")]
    for reference, hypothesis in pairs:
        once = reconcile(reference, hypothesis)
        assert reconcile(*once) == once
        assert once[0] == once[1]
