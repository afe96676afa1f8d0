"""Word error rate of a transcript against the script text, with a truncation check."""

from __future__ import annotations

import math
from dataclasses import dataclass

from castline.qa.textnorm import normalise_for_wer, reconcile

TRUNCATION_FRACTION = 0.15
"""A trailing run of deleted reference words at least this fraction of the reference means the
audio stopped early. Measured with Whisper base on 24 hibari/piper renders (10–34 words each):
complete renders end with a run of 0 words in 24/24; renders cut to 90 % of their samples
0–6 %, to 85 % 9–20 %, to 75 % 8–26 %, to 50 % 39–69 %. 0.15 flags 22/24 of the 75 % cuts and
all 50 % cuts with no complete render flagged; 0.25 would flag only 2/24 of the 75 % cuts."""
TRUNCATION_MIN_WORDS = 2
"""…and at least this many words: a short line missing only its last word is a misheard word,
not a truncated render."""


@dataclass(frozen=True)
class WerScore:
    """How well a transcript matches its reference, after ``normalise_for_wer`` on both.

    ``wer``: (substitutions + deletions + insertions) / reference_words, 0..∞ (``inf`` when the
    reference is empty and the transcript is not; 0.0 when both are empty). ``coverage``: the
    fraction of reference words up to and including the last matched word (0..1; 1.0 for an empty
    reference). ``trailing_deletions``: reference words deleted as one run at the end.
    ``truncated``: that run is at least ``TRUNCATION_FRACTION`` of the reference and at least
    ``TRUNCATION_MIN_WORDS`` words: the transcript covers only a prefix of the text.
    """

    wer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_words: int
    hypothesis_words: int
    coverage: float
    trailing_deletions: int
    truncated: bool
    normalised_reference: str
    normalised_hypothesis: str


def score(reference_text: str, transcript_text: str, language: str = "en") -> WerScore:
    """Score ``transcript_text`` (what the recogniser heard) against ``reference_text`` (the script)."""
    reference, hypothesis = reconcile(normalise_for_wer(reference_text, language),
                                      normalise_for_wer(transcript_text, language))
    reference_count = len(reference.split())
    hypothesis_count = len(hypothesis.split())
    if reference_count == 0:
        return WerScore(wer=0.0 if hypothesis_count == 0 else math.inf, substitutions=0, deletions=0,
                        insertions=hypothesis_count, hits=0, reference_words=0,
                        hypothesis_words=hypothesis_count, coverage=1.0, trailing_deletions=0, truncated=False,
                        normalised_reference=reference, normalised_hypothesis=hypothesis)
    import jiwer

    output = jiwer.process_words(reference, hypothesis)
    chunks = output.alignments[0]
    last_hit_end = max((chunk.ref_end_idx for chunk in chunks if chunk.type == "equal"), default=0)
    trailing = 0
    for chunk in reversed(chunks):
        if chunk.type == "insert":
            continue
        if chunk.type == "delete" and chunk.ref_end_idx == reference_count:
            trailing = chunk.ref_end_idx - chunk.ref_start_idx
        break
    truncated = trailing >= max(TRUNCATION_MIN_WORDS, math.ceil(TRUNCATION_FRACTION * reference_count))
    errors = output.substitutions + output.deletions + output.insertions
    return WerScore(wer=errors / reference_count, substitutions=output.substitutions, deletions=output.deletions,
                    insertions=output.insertions, hits=output.hits, reference_words=reference_count,
                    hypothesis_words=hypothesis_count, coverage=last_hit_end / reference_count,
                    trailing_deletions=trailing, truncated=truncated or hypothesis_count == 0,
                    normalised_reference=reference, normalised_hypothesis=hypothesis)
