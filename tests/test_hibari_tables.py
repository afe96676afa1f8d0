"""hibari's G2P tables packed in tries answer every lookup as hibari's own dictionaries do."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

pytest.importorskip("hibari")

from hibari.g2p import G2P  # noqa: E402

from castline.engines import hibari_tables  # noqa: E402
from castline.engines.hibari_tables import PackedLexicon, PackedWeights, packed_g2p, tables_key  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Heteronyms the tagger decides, words read from the part-of-speech dict, numbers, abbreviations,
# capitals and words no lexicon holds (the OOV net reads them).
TRICKY = """I read the record yesterday, and I will record a new one; read it again. They live in a live
venue. We used to be used to it. To the 1990s and 2,300 people, $4.50 each. Dr. Smith met NASA's
CEO at 10:30 a.m. on March 3rd. The wind wound round the bandage's wound. Zorblaxian gleebs
frimbled quixotically. 'Cause y'all can't stop. The lead singer's lead pipe. A close call; close the door."""


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("hibari-g2p")


@pytest.fixture(scope="module", params=["built", "from the cache"])
def g2ps(request, cache_root):
    """hibari's own G2P, and castline's: built from hibari's JSON (and stored), then read back."""
    packed = packed_g2p(british=False, cache_root=cache_root)
    if request.param == "from the cache":
        assert (cache_root / tables_key(False) / "golds.trie").is_file()
        packed = packed_g2p(british=False, cache_root=cache_root)
    return _stock(), packed


@functools.cache
def _stock():
    return G2P()


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
    weights = PackedWeights.build({"b": {"NN": 1.5, "ZZ": -0.25}}, ["NN"])
    assert weights.get("b") == {"NN": 1.5, "ZZ": -0.25}


def test_stored_tables_are_read_instead_of_built(tmp_path, monkeypatch):
    packed_g2p(british=False, cache_root=tmp_path)
    [folder] = tmp_path.iterdir()
    assert folder.name == tables_key(False) and sorted(path.name for path in folder.iterdir()) == [
        "golds.trie", "silvers.trie", "tables.json", "weights.trie"]
    monkeypatch.setattr(hibari_tables, "build_tables", lambda british: pytest.fail("built again"))
    assert packed_g2p(british=False, cache_root=tmp_path)("I read it.") == _stock()("I read it.")


def test_a_damaged_cache_is_rebuilt(tmp_path):
    packed_g2p(british=False, cache_root=tmp_path)
    folder = tmp_path / tables_key(False)
    (folder / "weights.trie").write_bytes(b"not a trie")
    assert packed_g2p(british=False, cache_root=tmp_path)("They live here.") == _stock()("They live here.")
    assert (folder / "weights.trie").read_bytes() != b"not a trie"


def test_an_unwritable_cache_still_gives_the_tables(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    assert packed_g2p(british=False, cache_root=blocked)("Close the door.") == _stock()("Close the door.")
    assert blocked.is_file()


def test_the_key_names_the_accent_and_the_package():
    assert tables_key(False) != tables_key(True)
    assert tables_key(False) == tables_key(False)
