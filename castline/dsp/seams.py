"""Click detection at joins: the largest sample step near a join, relative to the local level."""

from __future__ import annotations

import math

import numpy as np

CLICK_THRESHOLD_DB = 6.0
"""Inside ordinary speech the metric stayed under 4.5 dB (measured on 300 chunks); above 6 dB is a click."""
INAUDIBLE_DBFS = -60.0
"""A step smaller than this (dBFS) is not a click, whatever its size relative to the room tone around it."""


def seam_jump_db(audio: np.ndarray, join: int, sample_rate: int, window_ms: float = 1.0,
                 context_ms: float = 18.0) -> float:
    """JUMP at ``join`` (sample index): max |x[n+1] − x[n]| within ±``window_ms`` of the join,
    over the RMS of the louder of the two ``context_ms`` windows either side, in dB.

    ``-inf`` when nothing audible moves there (a join inside silence or low room tone: steps
    under ``INAUDIBLE_DBFS``).
    """
    half = max(1, int(round(sample_rate * window_ms / 1000)))
    context = max(1, int(round(sample_rate * context_ms / 1000)))
    lo, hi = max(0, join - half), min(audio.size, join + half + 1)
    if hi - lo < 2:
        return -math.inf
    step = float(np.max(np.abs(np.diff(audio[lo:hi].astype(np.float64)))))
    before = audio[max(0, join - context):join].astype(np.float64)
    after = audio[join:join + context].astype(np.float64)
    rms = max(math.sqrt(float(np.mean(part * part))) if part.size else 0.0 for part in (before, after))
    if step == 0.0 or step < 10 ** (INAUDIBLE_DBFS / 20):
        return -math.inf
    if rms == 0.0:
        return math.inf
    return 20 * math.log10(step / rms)


def seam_report(audio: np.ndarray, joins: list[int], sample_rate: int,
                threshold_db: float = CLICK_THRESHOLD_DB) -> list[tuple[int, float]]:
    """``(join, jump_db)`` for every join whose JUMP exceeds ``threshold_db``."""
    flagged = []
    for join in joins:
        jump = seam_jump_db(audio, join, sample_rate)
        if jump > threshold_db:
            flagged.append((join, jump))
    return flagged
