"""The spoken form of a text: pronunciation lexicons first, then normalisation of the rest."""

from __future__ import annotations

from collections.abc import Sequence

from castline.script.lexicon import CompiledLexicons, Lexicon, Rewrite, compile_lexicons
from castline.script.normalise import normalise_edits


def spoken_form(text: str, lexicons: Sequence[Lexicon] = (), *, engine: str | None = None,
                voice_id: str | None = None, language: str = "en", normalise: bool = False,
                warn: bool = True, compiled: CompiledLexicons | None = None) -> Rewrite:
    """Apply ``lexicons`` (precedence order, longest match first), then, with ``normalise``,
    spell out numbers, dates, money, units and abbreviations in the text no rule touched.

    ``compiled`` (from ``compile_lexicons``) saves compiling per call for long texts.
    A lexicon rule beats normalisation: a rule for "3M" keeps "3M" from becoming "three M".
    """
    if compiled is None:
        compiled = compile_lexicons(tuple(lexicons), engine=engine, voice_id=voice_id, language=language,
                                    warn=warn)
    edits = compiled.apply(text)
    if normalise:
        gaps, position = [], 0
        for edit in edits:
            gaps.append((position, edit.start))
            position = edit.end
        gaps.append((position, len(text)))
        for start, end in gaps:
            if end > start:
                edits.extend(normalise_edits(text, language, start, end))
    return Rewrite.build(text, edits)
