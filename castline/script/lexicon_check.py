"""Proof-reading before a long render: what an engine may get wrong, and what will be rewritten.

``check_episode`` goes through every turn as the render would (same lexicons, same order, same
normalisation) and reports:

* ``rule``: lexicon rules that fire, with what the engine is sent;
* ``expansion``: numbers, dates, money, units and abbreviations and their spoken form (with
  normalisation off, they are listed as ``left-as-written``: the engine reads them itself);
* ``all-caps``: capitalised tokens (``NASA``, ``SQL``) an engine may spell out or read as a word;
* ``mixed-script``: tokens mixing writing systems (a Cyrillic ``а`` inside a Latin word);
* ``out-of-vocabulary``: words the engine's own lexicon does not know, where it exposes one;
* ``phoneme-skipped``: phoneme-only rules the engine cannot take (the word is read as written).

Words inside a rule's or an expansion's span are not checked again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from castline.script.lexicon import Lexicon, Rewrite, compile_lexicons
from castline.script.model import Episode
from castline.script.normalise import normalise_edits
from castline.script.spoken import spoken_form

KINDS = ("rule", "phoneme-skipped", "expansion", "left-as-written", "all-caps", "mixed-script", "out-of-vocabulary")
_WORD = re.compile(r"[^\W\d_](?:[^\W_]|['’\-](?=[^\W\d_]))*")
_ALL_CAPS = re.compile(r"[A-ZÀ-ÖØ-Þ]{2,}(?:s|'s)?")


@dataclass(frozen=True)
class Finding:
    """One thing worth a listen: ``written`` is read as ``spoken`` (``count`` times)."""

    kind: str
    written: str
    spoken: str
    where: str
    count: int = 1
    detail: str = ""


@dataclass(frozen=True)
class LexiconCheck:
    findings: tuple[Finding, ...]

    def of_kind(self, kind: str) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.kind == kind)

    def lines(self) -> list[str]:
        """A plain-text report, grouped by kind."""
        titles = {"rule": "Lexicon rules that fire", "phoneme-skipped": "Phoneme rules this engine cannot take",
                  "expansion": "Numbers and abbreviations spelled out",
                  "left-as-written": "Numbers and abbreviations left to the engine (normalisation off)",
                  "all-caps": "All-caps tokens (may be spelled out or read as a word)",
                  "mixed-script": "Tokens mixing writing systems",
                  "out-of-vocabulary": "Words the engine's lexicon does not know"}
        out = []
        for kind in KINDS:
            group = self.of_kind(kind)
            if not group:
                continue
            out.append(f"{titles[kind]} ({len(group)}):")
            for finding in group:
                times = f" ×{finding.count}" if finding.count > 1 else ""
                arrow = f" → {finding.spoken}" if finding.spoken and finding.spoken != finding.written else ""
                detail = f" [{finding.detail}]" if finding.detail else ""
                out.append(f"  {finding.written}{arrow}{times}  ({finding.where}){detail}")
        return out or ["Nothing to report."]


def check_episode(episode: Episode, lexicons: Sequence[Lexicon] | Mapping[str, Sequence[Lexicon]] = (), *,
                  engines: Mapping[str, str] | None = None, voices: Mapping[str, str] | None = None,
                  normalise: bool = True,
                  vocabulary: Mapping[str, Callable[[str], bool] | None] | None = None) -> LexiconCheck:
    """Check every turn of ``episode``. Per speaker: ``lexicons`` (or one list for all),
    ``engines`` (engine name), ``voices`` (voice id) and ``vocabulary`` (a membership test for
    the engine's lexicon, keyed by engine name)."""
    language = episode.meta.language
    found: dict[tuple[str, str, str], list] = {}

    def note(kind: str, written: str, spoken: str, where: str, detail: str = "") -> None:
        key = (kind, written, spoken)
        if key in found:
            found[key][0] += 1
        else:
            found[key] = [1, where, detail]

    for turn in episode.turns:
        speaker_lexicons = lexicons.get(turn.speaker, ()) if isinstance(lexicons, Mapping) else lexicons
        engine = (engines or {}).get(turn.speaker)
        voice = (voices or {}).get(turn.speaker)
        where = str(turn.source)
        compiled = compile_lexicons(tuple(speaker_lexicons), engine=engine, voice_id=voice, language=language,
                                    warn=False)
        rewrite = spoken_form(turn.text, tuple(speaker_lexicons), engine=engine, voice_id=voice, language=language,
                              normalise=normalise, warn=False)
        for edit in rewrite.edits:
            written = turn.text[edit.start:edit.end]
            if edit.kind == "lexicon":
                note("rule", written, edit.spoken, where, edit.rule)
            else:
                note("expansion", written, edit.spoken, where, edit.rule)
        covered = _covered(rewrite)
        if not normalise:
            for edit in normalise_edits(turn.text, language):
                if not any(start <= edit.start < end for start, end in covered):
                    note("left-as-written", turn.text[edit.start:edit.end], edit.spoken, where, edit.rule)
        for label in compiled.skipped:
            for lexicon in speaker_lexicons:
                for rule in lexicon.rules:
                    if rule.label == label and re.search(re.escape(rule.grapheme), turn.text,
                                                         0 if rule.case_sensitive else re.IGNORECASE):
                        note("phoneme-skipped", rule.grapheme, "", where, f"{label}; engine {engine}")
        known = (vocabulary or {}).get(engine) if engine else None
        for match in _WORD.finditer(turn.text):
            if any(start <= match.start() < end for start, end in covered):
                continue
            word = match.group(0)
            if _ALL_CAPS.fullmatch(word):
                note("all-caps", word, "", where)
            elif len(_scripts(word)) > 1:
                note("mixed-script", word, "", where, " + ".join(sorted(_scripts(word))))
            elif known is not None and not known(word):
                note("out-of-vocabulary", word, "", where, f"engine {engine}")
    findings = [Finding(kind, written, spoken, value[1], value[0], value[2])
                for (kind, written, spoken), value in found.items()]
    findings.sort(key=lambda f: (KINDS.index(f.kind), -f.count, f.written.lower()))
    return LexiconCheck(tuple(findings))


def _covered(rewrite: Rewrite) -> list[tuple[int, int]]:
    return [(edit.start, edit.end) for edit in rewrite.edits]


def _scripts(word: str) -> set[str]:
    """Writing systems of a word's letters (first word of each letter's Unicode name)."""
    scripts = set()
    for char in word:
        if char.isalpha():
            name = unicodedata.name(char, "")
            scripts.add(name.split(" ", 1)[0] if name else "UNKNOWN")
    return scripts
