"""Which words an engine's own pronouncing lexicon knows, for ``castline lexicon check``.

Only hibari exposes one here (misaki's gold and silver dictionaries, about 180,000 entries);
espeak-ng and piper spell unknown words by letter-to-sound rules without saying which words
they guessed, and the neural engines read text directly, so they have no vocabulary to check.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable

_SUFFIXES = ("'s", "’s", "s", "es", "ed", "d", "ing", "er", "ers", "ly")


def engine_vocabulary(engine: str, voice: str | None = None) -> Callable[[str], bool] | None:
    """A membership test for ``engine``'s lexicon, or None when it has none to check."""
    if engine == "hibari" and importlib.util.find_spec("hibari") is not None:
        return _hibari_lexicon(british=False).__contains__
    return None


class _Known:
    """Case-insensitive word lookup with the regular English suffixes stripped."""

    def __init__(self, *dictionaries) -> None:
        self._dictionaries = dictionaries

    def _has(self, word: str) -> bool:
        return any(word in d or word.lower() in d or word.capitalize() in d for d in self._dictionaries)

    def __contains__(self, word: str) -> bool:
        if self._has(word):
            return True
        lower = word.lower()
        if lower.endswith(("ies", "ied")) and self._has(lower[:-3] + "y"):
            return True
        for suffix in _SUFFIXES:
            if lower.endswith(suffix) and len(lower) > len(suffix) + 2:
                stem = lower[: -len(suffix)]
                if self._has(stem) or self._has(stem + "e") or (len(stem) > 3 and stem[-1] == stem[-2]
                                                                  and self._has(stem[:-1])):
                    return True
        return False


@functools.lru_cache(maxsize=2)
def _hibari_lexicon(british: bool) -> _Known:
    from hibari.g2p import _load_json

    accent = "gb" if british else "us"
    return _Known(_load_json(f"lexicon_{accent}_gold.json.gz"), _load_json(f"lexicon_{accent}_silver.json.gz"))
