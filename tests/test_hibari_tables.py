"""hibari's G2P tables packed in tries answer every lookup as hibari's own dictionaries do."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("hibari")

from hibari.g2p import G2P  # noqa: E402

from castline.engines.hibari_tables import PackedLexicon, PackedWeights, packed_g2p  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Heteronyms the tagger decides, words read from the part-of-speech dict, numbers, abbreviations,
# capitals and words no lexicon holds (the OOV net reads them).
TRICKY = """I read the record yesterday, and I will record a new one; read it again. They live in a live
venue. We used to be used to it. To the 1990s and 2,300 people, $4.50 each. Dr. Smith met NASA's
CEO at 10:30 a.m. on March 3rd. The wind wound round the bandage's wound. Zorblaxian gleebs
frimbled quixotically. 'Cause y'all can't stop. The lead singer's lead pipe. A close call; close the door."""


@pytest.fixture(scope="module")
def g2ps():
    return G2P(), packed_g2p(british=False)


def test_every_lexicon_entry_reads_the_same(g2ps):
    stock, packed = g2ps
    for name in ("golds", "silvers"):
        plain, compact = getattr(stock.lexicon, name).d, getattr(packed.lexicon, name).d
        assert isinstance(compact, PackedLexicon) and len(compact) == len(plain)
        for word, reading in plain.items():
            assert compact.get(word) == reading, (name, word)
        # hibari also asks for case variants and words that are not there.
        for word in list(plain)[::97]:
            for variant in (word.lower(), word.capitalize(), word.upper(), word + "zz"):
                assert compact.get(variant) == plain.get(variant), (name, variant)
        assert compact.get("") == plain.get("")


def test_every_tagger_feature_weighs_the_same(g2ps):
    stock, packed = g2ps
    plain, compact = stock.tagger.weights, packed.tagger.weights
    assert isinstance(compact, PackedWeights)
    for feature, by_tag in plain.items():
        assert compact.get(feature) == by_tag, feature
    assert compact.get("w=no-such-feature") is None


def test_phonemes_are_the_same_on_real_text(g2ps):
    stock, packed = g2ps
    texts = [TRICKY] + [path.read_text(encoding="utf-8") for path in sorted((REPO / "scripts_in").glob("*"))
                        if path.is_file()]
    sentences = [line.strip() for text in texts for line in text.replace(". ", ".\n").splitlines() if line.strip()]
    assert len(sentences) > 20
    for sentence in sentences:
        assert packed(sentence) == stock(sentence), sentence


def test_packed_tables_are_a_fraction_of_the_dictionaries(g2ps):
    _, packed = g2ps
    sizes = [packed.lexicon.golds.d.packed_bytes(), packed.lexicon.silvers.d.packed_bytes(),
             packed.tagger.weights.packed_bytes()]
    # The dictionaries take about 18, 18 and 36 MB (docs/benchmarks.md#memory).
    assert sum(sizes) < 12 * 2**20, sizes


def test_a_tag_outside_the_tag_list_is_kept():
    weights = PackedWeights({"b": {"NN": 1.5, "ZZ": -0.25}}, ["NN"])
    assert weights.get("b") == {"NN": 1.5, "ZZ": -0.25}
