"""Turn timings inside a window: where does each line start in the one waveform a model returns?

Method ("pause snapping"): each boundary's expected position is the line's share of the
window's text (characters, a proxy for speaking time), and it is snapped to the quietest
stretch of audio near that position — turn changes are where speakers pause. Accuracy is
measured in ``bench/window_timing.py`` on real speech with known boundaries (see docs/benchmarks.md, turn timings inside windows).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

FRAME_MS = 10.0
SEARCH_FRACTION = 0.45
"""Search ± this share of the neighbouring lines' expected durations around each expected boundary."""
MIN_PAUSE_MS = 80.0
QUIET_ABOVE_FLOOR_DB = 12.0
"""A frame is quiet when within this many dB of the window's noise floor (5th percentile)."""
DISTANCE_COST = 0.04
"""Score = pause length − this × distance from the expected boundary (both in frames): a pause
twice as long wins unless it is much further away. Turn pauses are longer than sentence gaps."""
ONSET_MARGIN_MS = 40.0
"""Boundaries sit this far before the next line's speech onset (the end of the chosen pause)."""


def expected_boundaries(line_texts: Sequence[str], total_samples: int) -> list[int]:
    """Start sample of lines 1..n-1 if speaking time were proportional to characters."""
    weights = np.array([max(1, len(text.strip())) for text in line_texts], dtype=np.float64)
    cumulative = np.cumsum(weights)[:-1] / weights.sum()
    return [int(round(share * total_samples)) for share in cumulative]


def quiet_runs(audio: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges (``FRAME_MS`` frames) of pauses at least ``MIN_PAUSE_MS`` long."""
    frame = max(1, int(sample_rate * FRAME_MS / 1000))
    frames = audio.size // frame
    if frames == 0:
        return []
    power = np.mean(audio[: frames * frame].astype(np.float64).reshape(frames, frame) ** 2, axis=1)
    level = 10 * np.log10(power + 1e-20)
    quiet = level < np.percentile(level, 5) + QUIET_ABOVE_FLOOR_DB
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    minimum = int(MIN_PAUSE_MS / FRAME_MS)
    return [(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2]) if end - start >= minimum]


def line_boundaries(audio: np.ndarray, sample_rate: int, line_texts: Sequence[str]) -> list[int]:
    """Start sample of each line after the first (``len(line_texts) - 1`` increasing values).

    Each boundary goes to the pause that best combines length and closeness to the expected
    position, just before the next line's onset; with no pause in reach, the expected position.
    """
    count = len(line_texts)
    if count <= 1:
        return []
    frame = max(1, int(sample_rate * FRAME_MS / 1000))
    frames = audio.size // frame
    expected = [position // frame for position in expected_boundaries(line_texts, audio.size)]
    if frames < count:
        return [e * frame for e in expected]
    runs = quiet_runs(audio, sample_rate)
    durations = np.diff([0, *expected, frames])
    margin = int(ONSET_MARGIN_MS / FRAME_MS)
    boundaries: list[int] = []
    floor = 1
    for index, centre in enumerate(expected):
        reach = int(SEARCH_FRACTION * min(durations[index], durations[index + 1]))
        low, high = max(floor, centre - reach), min(frames - (count - 1 - index), centre + reach)
        best, best_score = None, -np.inf
        for start, end in runs:
            if end <= low or start >= high:
                continue
            point = min(max(end - margin, start, floor), frames - 1)
            score = (end - start) - DISTANCE_COST * abs(point - centre)
            if score > best_score:
                best, best_score = point, score
        chosen = best if best is not None else min(max(centre, floor), frames - 1)
        boundaries.append(chosen)
        floor = chosen + 1
    return [int(b * frame) for b in boundaries]
