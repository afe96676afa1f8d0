"""Pronunciation lexicons: YAML rule files and W3C PLS 1.0, applied longest match first.

A lexicon is an ordered list of rules. A rule matches a ``grapheme`` (the written form) and
replaces it by an ``alias`` (other text the engine reads) or a ``phoneme`` string (only for
engines that take phonemes in that alphabet: see ``PHONEME_ENGINES``).

Several lexicons apply together in one pass, left to right over the text: at each position the
longest matching grapheme wins; between graphemes of equal length the lexicon listed first wins,
then the earlier rule in its file. Replacements are never matched again (no rule rewrites another
rule's output). Every replacement is kept as an ``Edit`` so the written text, the spoken text and
the rules that fired can be told apart later (manifests, QA, subtitles).
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
import warnings
import xml.parsers.expat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from castline.core.errors import ScriptError
from castline.core.hashing import content_hash
from castline.script.textio import read_script_text

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PLS_NAMESPACE = "http://www.w3.org/2005/01/pronunciation-lexicon"
YAML_TOP_KEYS = ("rules", "language", "voices", "case_sensitive", "word_boundaries", "alphabet")
YAML_RULE_KEYS = ("grapheme", "alias", "phoneme", "alphabet", "case_sensitive", "word_boundaries")
DEFAULT_CASE_SENSITIVE = False
DEFAULT_WORD_BOUNDARIES = True
DEFAULT_ALPHABET = "ipa"

PHONEME_ENGINES: dict[str, dict[str, str]] = {
    "espeak": {"x-espeak": "espeak"},
    "piper": {"ipa": "piper"},
    "hibari": {"ipa": "misaki", "x-misaki": "misaki"},
}
"""Engines that take phonemes inline, by alphabet, and the markup they read:

* espeak-ng reads ``[[...]]`` in its own phoneme mnemonics (PLS ``alphabet="x-espeak"``), not IPA;
* piper (espeak-ng phonemiser) reads ``[[...]]`` as raw IPA phonemes;
* hibari (misaki G2P) reads ``[word](/phonemes/)`` in misaki's alphabet; IPA is converted.

VibeVoice and Pocket TTS read text only: a phoneme-only rule raises a warning for them and the
word is left as written."""


class LexiconError(ScriptError):
    """A lexicon file cannot be used as written (names the file, line and field)."""


@dataclass(frozen=True)
class LexiconRule:
    """One rule: ``grapheme`` → ``alias`` and/or ``phoneme`` (in ``alphabet``)."""

    grapheme: str
    alias: str | None
    phoneme: str | None
    alphabet: str | None
    case_sensitive: bool
    word_boundaries: bool
    path: str
    line: int

    @property
    def label(self) -> str:
        """How manifests and reports name the rule: ``file:line grapheme``."""
        return f"{Path(self.path).name}:{self.line} {self.grapheme}"


@dataclass(frozen=True, eq=False)
class Lexicon:
    """A parsed lexicon file (compared by identity: compiled rule sets are cached per object). ``voices`` empty = every voice; ``language`` None = any."""

    path: str
    rules: tuple[LexiconRule, ...]
    language: str | None = None
    voices: tuple[str, ...] = ()
    digest: str = ""

    def applies_to(self, voice_id: str | None, language: str | None) -> bool:
        if self.voices and voice_id is not None and voice_id not in self.voices:
            return False
        if self.language and language:
            return _primary(self.language) == _primary(language)
        return True


@dataclass(frozen=True)
class Edit:
    """A replacement of ``written[start:end]``: ``spoken`` goes to the engine, ``reference`` is
    what a listener should hear it as (for QA: phoneme markup reads as its grapheme)."""

    start: int
    end: int
    spoken: str
    reference: str
    rule: str
    kind: str = "lexicon"


@dataclass(frozen=True)
class Rewrite:
    """Written text, the edits made to it, and the results (computed once)."""

    written: str
    edits: tuple[Edit, ...]
    spoken: str = field(default="", compare=False)
    reference: str = field(default="", compare=False)

    @classmethod
    def build(cls, written: str, edits: Iterable[Edit]) -> "Rewrite":
        ordered = tuple(sorted(edits, key=lambda e: (e.start, e.end)))
        spoken, reference, position = [], [], 0
        for edit in ordered:
            if edit.start < position:
                raise ValueError("overlapping edits")
            spoken += [written[position:edit.start], edit.spoken]
            reference += [written[position:edit.start], edit.reference]
            position = edit.end
        spoken.append(written[position:])
        reference.append(written[position:])
        return cls(written, ordered, "".join(spoken), "".join(reference))

    @property
    def rules(self) -> tuple[str, ...]:
        """Labels of the rules that fired, in text order, each once."""
        return tuple(dict.fromkeys(edit.rule for edit in self.edits))

    def spoken_offsets(self) -> list[tuple[int, int, Edit | None]]:
        """(spoken start, spoken end, edit) for each edit, in order."""
        out, shift = [], 0
        for edit in self.edits:
            start = edit.start + shift
            out.append((start, start + len(edit.spoken), edit))
            shift += len(edit.spoken) - (edit.end - edit.start)
        return out

    def written_span(self, spoken_start: int, spoken_end: int) -> tuple[int, int]:
        """The written span a spoken slice came from. A cut inside a replacement sends the whole
        written form to the earlier slice."""
        return (self._to_written(spoken_start), self._to_written(spoken_end))

    def _to_written(self, position: int) -> int:
        shift = 0
        for start, end, edit in self.spoken_offsets():
            if position <= start:
                break
            if position < end:
                return edit.end
            shift = end - edit.end
        return position - shift

    def sub(self, spoken_start: int, spoken_end: int) -> "Rewrite":
        """The rewrite of one spoken slice (its written text, spoken text and edits)."""
        w_start, w_end = self.written_span(spoken_start, spoken_end)
        inside = [Edit(e.start - w_start, e.end - w_start, e.spoken, e.reference, e.rule, e.kind)
                  for e in self.edits if w_start <= e.start and e.end <= w_end and e.end > e.start]
        return Rewrite.build(self.written[w_start:w_end], inside)


# -- loading -----------------------------------------------------------------------------------


def load_lexicon(path: str | os.PathLike[str]) -> Lexicon:
    """Read a YAML (``.yaml``/``.yml``) or PLS (``.pls``/``.xml``, or XML content) lexicon."""
    source = os.fspath(path)
    try:
        text = read_script_text(source)
    except ScriptError as exc:
        raise LexiconError(exc.message.replace("script", "lexicon"), source=source, line=exc.line) from exc
    suffix = Path(source).suffix.lower()
    if suffix in (".pls", ".xml") or (suffix not in (".yaml", ".yml") and text.lstrip().startswith("<")):
        lexicon = parse_pls(text, source)
    else:
        lexicon = parse_lexicon_yaml(text, source)
    return Lexicon(lexicon.path, lexicon.rules, lexicon.language, lexicon.voices, content_hash(text))


def load_lexicons(paths: Sequence[str | os.PathLike[str]]) -> tuple[Lexicon, ...]:
    """Load lexicons in order, each file once (the first mention keeps its place)."""
    seen: dict[str, Lexicon] = {}
    for path in paths:
        key = os.path.abspath(os.fspath(path))
        if key not in seen:
            seen[key] = load_lexicon(path)
    return tuple(seen.values())


def parse_lexicon_yaml(text: str, source: str) -> Lexicon:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise LexiconError(f"invalid YAML: {exc.problem or exc.context or 'syntax error'}", source=source,
                           line=mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise LexiconError(f"invalid YAML: {str(exc).splitlines()[0]}", source=source) from exc
    if root is None:
        raise LexiconError("is empty (expected 'rules:')", source=source)
    top = _yaml_mapping(root, "", YAML_TOP_KEYS, source)
    if "rules" not in top:
        raise LexiconError("missing 'rules' (a list of {grapheme, alias})", source=source, line=_line(root))
    case_sensitive = _yaml_bool(top, "case_sensitive", DEFAULT_CASE_SENSITIVE, "", source)
    boundaries = _yaml_bool(top, "word_boundaries", DEFAULT_WORD_BOUNDARIES, "", source)
    alphabet = _yaml_text(top["alphabet"][1], "alphabet", source) if "alphabet" in top else DEFAULT_ALPHABET
    language = _yaml_text(top["language"][1], "language", source) if "language" in top else None
    voices: tuple[str, ...] = ()
    if "voices" in top:
        node = top["voices"][1]
        if isinstance(node, ScalarNode):
            voices = (_yaml_text(node, "voices", source),)
        elif isinstance(node, SequenceNode):
            voices = tuple(_yaml_text(item, f"voices[{i}]", source) for i, item in enumerate(node.value))
        else:
            raise LexiconError("must be a list of voice ids", source=source, line=_line(node), field="voices")
    rules_node = top["rules"][1]
    if not isinstance(rules_node, SequenceNode):
        raise LexiconError("must be a list of rules", source=source, line=_line(rules_node), field="rules")
    rules = []
    for index, item in enumerate(rules_node.value):
        path = f"rules[{index}]"
        fields = _yaml_mapping(item, path, YAML_RULE_KEYS, source)
        if "grapheme" not in fields:
            raise LexiconError("missing 'grapheme'", source=source, line=_line(item), field=path)
        grapheme = _yaml_text(fields["grapheme"][1], f"{path}.grapheme", source)
        alias = _yaml_text(fields["alias"][1], f"{path}.alias", source, allow_empty=True) \
            if "alias" in fields else None
        phoneme = _yaml_text(fields["phoneme"][1], f"{path}.phoneme", source) if "phoneme" in fields else None
        if alias is None and phoneme is None:
            raise LexiconError("needs an 'alias' or a 'phoneme'", source=source, line=_line(item), field=path)
        rule_alphabet = _yaml_text(fields["alphabet"][1], f"{path}.alphabet", source) \
            if "alphabet" in fields else alphabet
        rules.append(LexiconRule(
            grapheme=grapheme, alias=alias, phoneme=phoneme,
            alphabet=rule_alphabet.lower() if phoneme is not None else None,
            case_sensitive=_yaml_bool(fields, "case_sensitive", case_sensitive, path, source),
            word_boundaries=_yaml_bool(fields, "word_boundaries", boundaries, path, source),
            path=source, line=_line(item)))
    return Lexicon(source, tuple(rules), language, voices)


def _yaml_mapping(node: Node, path: str, allowed: Sequence[str], source: str) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node, MappingNode):
        raise LexiconError("must be a mapping", source=source, line=_line(node), field=path or None)
    fields: dict[str, tuple[Node, Node]] = {}
    for key_node, value in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        where = f"{path}.{key}" if path else str(key)
        if key not in allowed:
            raise LexiconError(f"unknown key '{key}'; allowed: {', '.join(allowed)}", source=source,
                               line=_line(key_node), field=where)
        if key in fields:
            raise LexiconError(f"duplicate key '{key}'", source=source, line=_line(key_node), field=where)
        fields[key] = (key_node, value)
    return fields


def _yaml_text(node: Node, path: str, source: str, allow_empty: bool = False) -> str:
    if not isinstance(node, ScalarNode) or (node.tag.endswith(":null") and not allow_empty):
        raise LexiconError("must be text", source=source, line=_line(node), field=path)
    value = " ".join(node.value.split()) if not node.tag.endswith(":null") else ""
    if not value and not allow_empty:
        raise LexiconError("is empty", source=source, line=_line(node), field=path)
    return value


def _yaml_bool(fields: dict[str, tuple[Node, Node]], key: str, default: bool, path: str, source: str) -> bool:
    if key not in fields:
        return default
    node = fields[key][1]
    where = f"{path}.{key}" if path else key
    if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
        return node.value.lower() in ("true", "yes", "on")
    raise LexiconError("must be true or false", source=source, line=_line(node), field=where)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def parse_pls(text: str, source: str) -> Lexicon:
    """W3C PLS 1.0: each ``<lexeme>``'s graphemes map to its first ``<alias>`` and first
    ``<phoneme>``. PLS matching is case-sensitive and by whole word."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    stack: list[str] = []
    state: dict[str, object] = {"root": None, "alphabet": DEFAULT_ALPHABET, "lang": None}
    lexemes: list[dict] = []
    buffer: list[str] = []

    def local(name: str) -> tuple[str, str]:
        namespace, _, tag = name.rpartition(" ")
        return namespace, tag

    def start(name: str, attrs: dict[str, str]) -> None:
        namespace, tag = local(name)
        line = parser.CurrentLineNumber
        if not stack:
            if tag != "lexicon" or namespace != PLS_NAMESPACE:
                raise LexiconError(f"root element must be <lexicon xmlns=\"{PLS_NAMESPACE}\"> (found <{tag}>)",
                                   source=source, line=line)
            if attrs.get("version") != "1.0":
                raise LexiconError("PLS version must be \"1.0\"", source=source, line=line, field="lexicon@version")
            state["alphabet"] = attrs.get("alphabet", DEFAULT_ALPHABET).lower()
            state["lang"] = attrs.get("http://www.w3.org/XML/1998/namespace lang")
        elif namespace == PLS_NAMESPACE and tag == "lexeme":
            lexemes.append({"line": line, "graphemes": [], "alias": None, "phoneme": None, "alphabet": None})
        elif namespace == PLS_NAMESPACE and tag in ("grapheme", "alias", "phoneme"):
            if not stack or stack[-1] != "lexeme":
                raise LexiconError(f"<{tag}> outside a <lexeme>", source=source, line=line)
            if tag == "phoneme":
                lexemes[-1]["phoneme_alphabet"] = attrs.get("alphabet")
            buffer.clear()
        stack.append(tag if namespace == PLS_NAMESPACE else f"other:{tag}")

    def end(name: str) -> None:
        tag = stack.pop()
        line = parser.CurrentLineNumber
        if tag in ("grapheme", "alias", "phoneme"):
            value = " ".join("".join(buffer).split())
            entry = lexemes[-1]
            if tag == "grapheme":
                if not value:
                    raise LexiconError("empty <grapheme>", source=source, line=line)
                entry["graphemes"].append(value)
            elif tag == "alias" and entry["alias"] is None:
                entry["alias"] = value
            elif tag == "phoneme" and entry["phoneme"] is None and value:
                entry["phoneme"] = value
                entry["alphabet"] = (entry.get("phoneme_alphabet") or state["alphabet"]).lower()
        elif tag == "lexeme":
            entry = lexemes[-1]
            if not entry["graphemes"]:
                raise LexiconError("<lexeme> has no <grapheme>", source=source, line=entry["line"])
            if entry["alias"] is None and entry["phoneme"] is None:
                raise LexiconError("<lexeme> has no <alias> or <phoneme>", source=source, line=entry["line"])

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = buffer.append
    try:
        parser.Parse(text.encode("utf-8"), True)
    except xml.parsers.expat.ExpatError as exc:
        raise LexiconError(f"invalid XML: {xml.parsers.expat.errors.messages[exc.code]}", source=source,
                           line=exc.lineno) from exc
    rules = tuple(LexiconRule(grapheme=grapheme, alias=entry["alias"], phoneme=entry["phoneme"],
                              alphabet=entry["alphabet"], case_sensitive=True, word_boundaries=True,
                              path=source, line=entry["line"])
                  for entry in lexemes for grapheme in entry["graphemes"])
    return Lexicon(source, rules, state["lang"] if isinstance(state["lang"], str) else None, ())


def show_lexicon_files(show_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The ``lexicons:`` of a show file (the podcast feed's YAML), resolved against its folder."""
    source = os.fspath(show_path)
    text = read_script_text(source)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LexiconError("invalid YAML", source=source, line=mark.line + 1 if mark else None) from exc
    if not isinstance(root, MappingNode):
        return ()
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "lexicons":
            items = value.value if isinstance(value, SequenceNode) else [value]
            folder = Path(source).parent
            return tuple(str(folder / _yaml_text(item, f"lexicons[{n}]", source)) for n, item in enumerate(items))
    return ()


# -- applying ------------------------------------------------------------------------------------


def phoneme_markup(engine: str | None, rule: LexiconRule) -> str | None:
    """What ``engine`` should read for a phoneme rule, or None if it cannot take it."""
    if rule.phoneme is None or engine is None:
        return None
    kind = PHONEME_ENGINES.get(engine, {}).get(rule.alphabet or DEFAULT_ALPHABET)
    if kind == "espeak":
        return f"[[{rule.phoneme}]]"
    if kind == "piper":
        return f"[[ {rule.phoneme.replace('.', '')} ]]"
    if kind == "misaki":
        phonemes = ipa_to_misaki(rule.phoneme) if rule.alphabet == "ipa" else rule.phoneme
        # misaki's link syntax takes one token: the grapheme's own words joined.
        label = re.sub(r"[\[\]()]", "", rule.grapheme)
        return f"[{label}](/{phonemes}/)"
    return None


_IPA_TO_MISAKI = (("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("əʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"),
                  ("dʒ", "ʤ"), ("d͡ʒ", "ʤ"), ("tʃ", "ʧ"), ("t͡ʃ", "ʧ"), ("ɝ", "ɜɹ"), ("ɚ", "əɹ"),
                  ("r", "ɹ"), ("g", "ɡ"), ("ː", ""), (".", ""), ("ɫ", "l"), ("ɐ", "ə"), ("e", "ɛ"))
"""IPA → misaki's alphabet (diphthongs and affricates as one letter). No maintained library
converts into misaki's alphabet, so this small table does it."""


def ipa_to_misaki(phonemes: str) -> str:
    out = unicodedata.normalize("NFC", phonemes).replace("'", "ˈ").replace(",", "ˌ")
    for ipa, misaki in _IPA_TO_MISAKI:
        out = out.replace(ipa, misaki)
    return out


_TOKEN = re.compile(r"\w+|\S")
"""How text and graphemes are cut into tokens for the rule index: a run of word characters, or
one other visible character."""


@dataclass(frozen=True)
class CompiledLexicons:
    """The rules that apply to one (engine, voice, language), ready to apply.

    Rules with word boundaries are indexed by their first token (lowercased): the text is read
    token by token and only the rules starting with that token are tried, longest grapheme
    first, so a book with a lexicon of thousands of rules applies in linear time. Rules without
    word boundaries (which may match inside a word) are one alternation, tried everywhere.
    """

    rules: tuple[LexiconRule, ...]
    replacements: tuple[tuple[str, str], ...]
    patterns: tuple[re.Pattern, ...]
    index: dict[str, tuple[int, ...]]
    inside_words: re.Pattern | None
    skipped: tuple[str, ...]

    def apply(self, text: str, start: int = 0, end: int | None = None) -> list[Edit]:
        """Edits for ``text[start:end]`` (positions are in ``text``), left to right, longest first."""
        if not self.rules:
            return []
        stop = len(text) if end is None else end
        candidates: list[tuple[int, int, int]] = []  # (start, -length, rule number)
        if self.index:
            for token in _TOKEN.finditer(text, start, stop):
                for number in self.index.get(token.group().lower(), ()):
                    match = self.patterns[number].match(text, token.start(), stop)
                    if match:
                        candidates.append((match.start(), match.start() - match.end(), number))
                        break
        if self.inside_words is not None:
            for match in self.inside_words.finditer(text, start, stop):
                candidates.append((match.start(), match.start() - match.end(), int(match.lastgroup[1:])))
        candidates.sort()
        edits, position = [], start
        for begin, negative_length, number in candidates:
            if begin < position:
                continue
            spoken, reference = self.replacements[number]
            edits.append(Edit(begin, begin - negative_length, spoken, reference, self.rules[number].label))
            position = begin - negative_length
        return edits


def compile_lexicons(lexicons: Sequence[Lexicon], *, engine: str | None = None, voice_id: str | None = None,
                     language: str | None = None, warn: bool = True) -> CompiledLexicons:
    """Compile the rules of ``lexicons`` (in precedence order) that apply to this voice.

    Phoneme rules are used where ``engine`` takes their alphabet; otherwise their alias is;
    a phoneme-only rule the engine cannot take is left out with a ``warnings.warn`` naming it.
    """
    lexicons = tuple(lexicon for lexicon in lexicons if lexicon.applies_to(voice_id, language))
    return _compile(lexicons, engine, warn)


@functools.lru_cache(maxsize=64)
def _compile(lexicons: tuple[Lexicon, ...], engine: str | None, warn: bool) -> CompiledLexicons:
    chosen: list[tuple[int, int, LexiconRule, str, str]] = []
    skipped = []
    order = 0
    for lexicon in lexicons:
        for rule in lexicon.rules:
            order += 1
            markup = phoneme_markup(engine, rule)
            if markup is not None:
                spoken, reference = markup, rule.alias if rule.alias is not None else rule.grapheme
            elif rule.alias is not None:
                spoken = reference = rule.alias
            else:
                skipped.append(rule.label)
                if warn and engine is not None:
                    warnings.warn(f"{rule.path}:{rule.line}: rule '{rule.grapheme}' gives only a phoneme "
                                  f"({rule.alphabet}), which engine '{engine}' cannot take"
                                  f"{_phoneme_hint(engine)}; '{rule.grapheme}' is read as written",
                                  stacklevel=3)
                continue
            chosen.append((-len(rule.grapheme), order, rule, spoken, reference))
    chosen.sort(key=lambda item: (item[0], item[1]))
    rules = tuple(item[2] for item in chosen)
    patterns = tuple(re.compile(_rule_pattern(rule)) for rule in rules)
    index: dict[str, list[int]] = {}
    inside = []
    for number, rule in enumerate(rules):
        if rule.word_boundaries:
            index.setdefault(_TOKEN.search(rule.grapheme).group().lower(), []).append(number)
        else:
            inside.append(f"(?P<r{number}>{_rule_pattern(rule)})")
    return CompiledLexicons(rules, tuple((item[3], item[4]) for item in chosen), patterns,
                            {key: tuple(numbers) for key, numbers in index.items()},
                            re.compile("|".join(inside)) if inside else None, tuple(skipped))


def _phoneme_hint(engine: str) -> str:
    alphabets = PHONEME_ENGINES.get(engine)
    if not alphabets:
        return " (it reads text only; give the rule an alias too)"
    return f" (it reads phonemes in {', '.join(sorted(alphabets))} only)"


def _rule_pattern(rule: LexiconRule) -> str:
    body = r"\s+".join(re.escape(word) for word in rule.grapheme.split())
    if not rule.case_sensitive:
        body = f"(?i:{body})"
    if rule.word_boundaries:
        if re.match(r"\w", rule.grapheme):
            body = r"(?<!\w)" + body
        if re.search(r"\w$", rule.grapheme):
            body += r"(?!\w)"
    return body


def apply_lexicons(text: str, lexicons: Sequence[Lexicon], *, engine: str | None = None,
                   voice_id: str | None = None, language: str | None = None) -> Rewrite:
    """Apply ``lexicons`` (first = highest precedence) to ``text``; longest match first."""
    compiled = compile_lexicons(lexicons, engine=engine, voice_id=voice_id, language=language)
    return Rewrite.build(text, compiled.apply(text))


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-", 1)[0].lower()
