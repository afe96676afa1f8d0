"""hibari-tts's G2P tables held compactly, and kept on disk once built.

hibari's G2P keeps its two pronunciation lexicons (gold and silver, about 90,000 words each) and its
part-of-speech tagger's weights (about 80,000 features) as Python dictionaries: about 72 MB for one
accent, held for as long as the engine is. Here the same tables live in marisa tries (2.9 MB), and
every lookup hibari makes (``Dict.get`` on a lexicon, ``weights.get`` in the tagger) answers as the
dictionary did. marisa-trie does the compact storage; what is written here only adapts its lookups
to the two call shapes hibari uses.

Building the tries from hibari's JSON takes about a second and leaves the dictionaries' memory
behind in the allocator, so they are built once and kept under
``$CASTLINE_HOME/cache/hibari-g2p/<key>/``; the key is a hash of hibari's and marisa-trie's
versions, the accent, this module's format and the three JSON files' contents. A process then reads
3 MB of tries and a small JSON file instead.
"""

from __future__ import annotations

import json
import shutil
import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import marisa_trie

from castline.core.atomic import atomic_folder
from castline.core.hashing import content_hash, file_digest
from castline.core.runtime import castline_home

CACHE_SUBDIR = "hibari-g2p"
TABLES_FORMAT = 1
"""Raised whenever what is stored changes, so that older caches are not read."""

_WEIGHT = struct.Struct("<Bd")
"""One tagger weight: the tag's index (0–255) and its weight, a float64 as in the JSON."""

_ASSETS = ("lexicon_{accent}_gold.json.gz", "lexicon_{accent}_silver.json.gz", "tagger.json.gz")
_TRIES = ("golds.trie", "silvers.trie", "weights.trie")
_REST = "tables.json"
_build_lock = threading.Lock()


class PackedLexicon:
    """A read-only ``word → phonemes`` table answering ``get`` as the dict it was built from.

    Words read one way are in a trie; the few hundred whose reading depends on the part of speech
    (a dict of readings) stay in a plain dict, ``by_tag``.
    """

    def __init__(self, trie: marisa_trie.BytesTrie, by_tag: dict[str, Any]) -> None:
        self._trie, self._by_tag = trie, by_tag

    @classmethod
    def build(cls, entries: dict[str, Any]) -> "PackedLexicon":
        return cls(marisa_trie.BytesTrie((word, value.encode("utf-8")) for word, value in entries.items()
                                         if isinstance(value, str)),
                   {word: value for word, value in entries.items() if not isinstance(value, str)})

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

    def __init__(self, trie: marisa_trie.BytesTrie, tags: list[str]) -> None:
        self._trie, self.tags = trie, list(tags)

    @classmethod
    def build(cls, weights: dict[str, dict[str, float]], tags: list[str]) -> "PackedWeights":
        every_tag = list(dict.fromkeys([*tags, *(tag for by_tag in weights.values() for tag in by_tag)]))
        if len(every_tag) > 256:
            raise ValueError(f"{len(every_tag)} tags do not fit one byte")
        index = {tag: number for number, tag in enumerate(every_tag)}
        return cls(marisa_trie.BytesTrie((feature, _WEIGHT.pack(index[tag], weight))
                                         for feature, by_tag in weights.items() for tag, weight in by_tag.items()),
                   every_tag)

    def get(self, feature: str, default: Any = None) -> dict[str, float] | Any:
        found = self._trie.get(feature)
        if not found:
            return default
        tags = self.tags
        return {tags[number]: weight for number, weight in map(_WEIGHT.unpack, found)}

    def __contains__(self, feature: str) -> bool:
        return feature in self._trie

    def packed_bytes(self) -> int:
        return len(self._trie.tobytes())


@dataclass(frozen=True)
class G2PTables:
    """One accent's packed tables and the rest of the tagger's model (its tag dictionary, tags and
    vocabulary, as hibari's JSON holds them)."""

    golds: PackedLexicon
    silvers: PackedLexicon
    weights: PackedWeights
    tagger: dict[str, Any]


def packed_g2p(british: bool, cache_root: Path | None = None):
    """hibari's ``G2P`` for one accent with its lexicons and tagger weights packed (see the module).

    ``cache_root``: where built tables are kept (default ``$CASTLINE_HOME/cache/hibari-g2p``). A cache
    that cannot be read is rebuilt; one that cannot be written leaves the tables built in memory."""
    folder = (cache_root or castline_home() / "cache" / CACHE_SUBDIR) / tables_key(british)
    with _build_lock:
        tables = _read_tables(folder)
        if tables is None:
            tables = build_tables(british)
            _write_tables(tables, folder)
        return _g2p_with(tables, british)


def tables_key(british: bool) -> str:
    """The cache key of an accent's tables: hibari's and marisa-trie's versions, the accent,
    ``TABLES_FORMAT`` and the SHA-256 of the JSON files they are built from."""
    import importlib.metadata

    return content_hash({"hibari": importlib.metadata.version("hibari-tts"), "british": british,
                         "format": TABLES_FORMAT, "marisa-trie": importlib.metadata.version("marisa-trie"),
                         "assets": {name: file_digest(str(_asset_path(name))) for name in _asset_names(british)}})


def build_tables(british: bool) -> G2PTables:
    """The packed tables, read from hibari's JSON files (about a second)."""
    from hibari.g2p import _load_json

    gold, silver, tagger = _asset_names(british)
    golds, silvers = PackedLexicon.build(_load_json(gold)), PackedLexicon.build(_load_json(silver))
    model = _load_json(tagger)
    weights = PackedWeights.build(model.pop("weights"), model["tags"])
    return G2PTables(golds, silvers, weights, model)


def _g2p_with(tables: G2PTables, british: bool):
    """hibari's own ``G2P`` constructor, handed the packed tables where it reads the JSON files."""
    import hibari.g2p

    gold, silver, tagger = _asset_names(british)
    packed = {gold: tables.golds, silver: tables.silvers, tagger: dict(tables.tagger, weights=tables.weights)}
    with _loading(hibari.g2p, packed):
        return hibari.g2p.G2P(british=british)


@contextmanager
def _loading(module, packed: dict[str, Any]):
    """``module._load_json`` answering ``packed``'s names from it (callers hold ``_build_lock``)."""
    original = module._load_json
    module._load_json = lambda name: packed[name] if name in packed else original(name)
    try:
        yield
    finally:
        module._load_json = original


def _read_tables(folder: Path) -> G2PTables | None:
    if not folder.is_dir():
        return None
    try:
        tries = []
        for name in _TRIES:
            trie = marisa_trie.BytesTrie()
            trie.load(str(folder / name))
            tries.append(trie)
        rest = json.loads((folder / _REST).read_text(encoding="utf-8"))
        return G2PTables(PackedLexicon(tries[0], rest["golds_by_tag"]), PackedLexicon(tries[1], rest["silvers_by_tag"]),
                         PackedWeights(tries[2], rest["weight_tags"]), rest["tagger"])
    except (OSError, ValueError, KeyError, RuntimeError):  # a damaged cache is rebuilt
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _write_tables(tables: G2PTables, folder: Path) -> None:
    """Writes the tables to a temporary folder beside ``folder``, then renames it into place, so a
    reader sees all of them or none. Best effort: a cache that cannot be written is skipped."""
    try:
        with atomic_folder(folder) as staging:
            for name, trie in zip(_TRIES, (tables.golds._trie, tables.silvers._trie, tables.weights._trie),
                                  strict=True):
                trie.save(str(staging / name))
            rest = {"golds_by_tag": tables.golds._by_tag, "silvers_by_tag": tables.silvers._by_tag,
                    "weight_tags": tables.weights.tags, "tagger": tables.tagger}
            (staging / _REST).write_text(json.dumps(rest, ensure_ascii=False), encoding="utf-8")
    except OSError:  # unwritable
        pass


def _asset_names(british: bool) -> tuple[str, str, str]:
    accent = "gb" if british else "us"
    return tuple(name.format(accent=accent) for name in _ASSETS)


def _asset_path(name: str) -> Path:
    from hibari.g2p import ASSETS

    return Path(ASSETS) / name
