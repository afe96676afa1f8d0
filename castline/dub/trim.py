"""Sample-exact speech edges for placing a cue, and cutting at a word gap."""

from __future__ import annotations

import numpy as np

from castline.dsp.edges import apply_fades, speech_bounds
from castline.core.timebase import ms_to_samples

ONSET_THRESHOLD_DBFS = -45.0
"""Speech starts at the first sample this loud (near the first 10 ms frame this loud in RMS)."""
TAIL_KEEP_MS = 40.0
FADE_OUT_MS = 10.0
WORD_GAP_DBFS = -40.0
WORD_SEARCH_MS = 2500.0


def speech_span(audio: np.ndarray, sample_rate: int, threshold_dbfs: float = ONSET_THRESHOLD_DBFS) -> tuple[int, int]:
    """``(onset, end)``: the onset is sample-exact (the first sample at or above the threshold
    from one frame before the first loud 10 ms frame), so placing ``audio[onset:]`` at a slot start
    puts the speech onset exactly there; the end keeps ``TAIL_KEEP_MS`` of decay."""
    first, last = speech_bounds(audio, sample_rate, threshold_dbfs, keep_ms=0.0)
    if first == 0 and last == audio.size and not np.any(np.abs(audio) >= 10 ** (threshold_dbfs / 20)):
        return 0, audio.size
    frame = max(1, int(sample_rate * 0.010))
    look_from = max(0, first - frame)
    loud = np.flatnonzero(np.abs(audio[look_from:last]) >= 10 ** (threshold_dbfs / 20))
    onset = look_from + int(loud[0]) if loud.size else first
    end = min(audio.size, last + ms_to_samples(TAIL_KEEP_MS, sample_rate))
    return onset, max(end, onset + 1)


def trimmed(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The speech alone: from its exact onset to its end, with a short fade-out."""
    onset, end = speech_span(audio, sample_rate)
    return apply_fades(audio[onset:end], 0, ms_to_samples(FADE_OUT_MS, sample_rate))


def word_cut(audio: np.ndarray, max_samples: int, sample_rate: int) -> int:
    """Where to end ``audio`` so it is at most ``max_samples`` long: the start of the last quiet
    10 ms frame (a gap between words, under ``WORD_GAP_DBFS``) in the last ``WORD_SEARCH_MS``
    before the limit; failing that, the quietest frame there; failing that, the limit itself."""
    if audio.size <= max_samples:
        return int(audio.size)
    if max_samples <= 0:
        return 0
    frame = max(1, int(sample_rate * 0.010))
    search_from = max(0, max_samples - ms_to_samples(WORD_SEARCH_MS, sample_rate))
    count = (max_samples - search_from) // frame
    if count < 2:
        return max_samples
    frames = audio[search_from:search_from + count * frame].astype(np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    quiet = np.flatnonzero(rms < 10 ** (WORD_GAP_DBFS / 20))
    # Skip frames right at the start of the search window: a cut there would drop whole words.
    chosen = int(quiet[-1]) if quiet.size else int(np.argmin(rms[1:]) + 1)
    return search_from + chosen * frame


def cut_at_word(audio: np.ndarray, max_samples: int, sample_rate: int) -> np.ndarray:
    """``audio`` ended at a word gap within ``max_samples``, faded out over ``FADE_OUT_MS``."""
    end = word_cut(audio, max_samples, sample_rate)
    return apply_fades(audio[:end], 0, ms_to_samples(FADE_OUT_MS, sample_rate))
