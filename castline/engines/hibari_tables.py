"""hibari-tts's G2P tables held compactly.

hibari's G2P keeps its two pronunciation lexicons (gold and silver, about 90,000 words each) and its
part-of-speech tagger's weights (about 80,000 features) as Python dictionaries: about 72 MB for one
accent, held for as long as the engine is. Here the same tables live in marisa tries (a few MB),
and every lookup hibari makes (``Dict.get`` on a lexicon, ``weights.get`` in the tagger) answers as
the dictionary did. marisa-trie does the compact storage; what is written here only adapts its
lookups to the two call shapes hibari uses.
"""

from __future__ import annotations

import struct
from typing import Any

import marisa_trie

_WEIGHT = struct.Struct("<Bd")
"""One tagger weight: the tag's index (0–255) and its weight, a float64 as in the JSON."""


class PackedLexicon:
    """A read-only ``word → phonemes`` table answering ``get`` as the dict it was built from.

    Words read one way are in a trie; the few hundred whose reading depends on the part of speech
    (a dict of readings) stay in a plain dict.
    """

    def __init__(self, entries: dict[str, Any]) -> None:
        self._by_tag = {word: value for word, value in entries.items() if not isinstance(value, str)}
        self._trie = marisa_trie.BytesTrie((word, value.encode("utf-8")) for word, value in entries.items()
                                           if isinstance(value, str))

    def get(self, word: str, default: Any = None) -> Any:
        if word in self._by_tag:
            return self._by_tag[word]
        found = self._trie.get(word)
        return found[0].decode("utf-8") if found else default

    def __contains__(self, word: str) -> bool:
        return word in self._by_tag or word in self._trie

    def __len__(self) -> int:
        return len(self._by_tag) + len(self._trie)

    def packed_bytes(self) -> int:
        """Size of the trie's serialised form, in bytes (the plain-dict part not counted)."""
        return len(self._trie.tobytes())


class PackedWeights:
    """The tagger's ``feature → {tag: weight}`` table; ``get`` builds the small inner dict per call.

    The tagger sums the weights per tag over a word's features, so the inner dict's item order
    does not change a score; each weight is the float64 the JSON held.
    """

    def __init__(self, weights: dict[str, dict[str, float]], tags: list[str]) -> None:
        self._tags = list(dict.fromkeys([*tags, *(tag for by_tag in weights.values() for tag in by_tag)]))
        index = {tag: number for number, tag in enumerate(self._tags)}
        if len(index) > 256:
            raise ValueError(f"{len(index)} tags do not fit one byte")
        self._trie = marisa_trie.BytesTrie(
            (feature, _WEIGHT.pack(index[tag], weight))
            for feature, by_tag in weights.items() for tag, weight in by_tag.items())

    def get(self, feature: str, default: Any = None) -> dict[str, float] | Any:
        found = self._trie.get(feature)
        if not found:
            return default
        tags = self._tags
        return {tags[number]: weight for number, weight in map(_WEIGHT.unpack, found)}

    def __contains__(self, feature: str) -> bool:
        return feature in self._trie

    def packed_bytes(self) -> int:
        return len(self._trie.tobytes())


def packed_g2p(british: bool):
    """hibari's ``G2P`` for one accent with its lexicons and tagger weights packed (see the module)."""
    from hibari.g2p import G2P

    g2p = G2P(british=british)
    lexicon = g2p.lexicon
    lexicon.golds.d = PackedLexicon(lexicon.golds.d)
    lexicon.silvers.d = PackedLexicon(lexicon.silvers.d)
    tagger = g2p.tagger
    tagger.weights = PackedWeights(tagger.weights, tagger.tags)
    return g2p
