"""Small text helpers shared by every stage."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message, else its type's name: error messages
    from libraries (transformers, YAML parsers, CTranslate2) run to many lines, and castline
    reports one."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
