"""Text clean-up shared by engines whose front ends stumble on typographic characters."""

from __future__ import annotations

_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2014": ", ", "\u2013": ", ", "\u2026": "...", "\u00a0": " ",
}


def plain_punctuation(text: str) -> str:
    """Curly quotes to straight ones, dashes to commas, ellipsis to dots (spoken the same)."""
    for source, target in _REPLACEMENTS.items():
        text = text.replace(source, target)
    return " ".join(text.replace(" ,", ",").split())
