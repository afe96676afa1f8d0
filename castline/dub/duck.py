"""Ducking: the background's gain under speech, as a sidechain-style envelope.

The dub knows exactly where speech is (every placed cue's ``[start, end)``), so the envelope is
computed from those spans rather than followed from the signal: full depth from the speech onset
to ``hold_ms`` after its end, reached over ``attack_ms`` *before* the onset and released over
``release_ms`` after the hold. Ramps are raised-cosine in dB (no clicks, no corners), and
overlapping ramps take the deeper gain; cues closer than the ramps need are joined, so the background stays
down between them instead of pumping. The gain
of any sample depends only on the spans, never on the block it falls in: streamed block by
block, the result is identical to one pass over the whole programme.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from castline.dub.options import DuckSettings
from castline.core.timebase import ms_to_samples


@dataclass(frozen=True)
class DuckEnvelope:
    """The spans that duck the background, sorted by start (samples at ``sample_rate``)."""

    spans: tuple[tuple[int, int], ...]
    sample_rate: int
    settings: DuckSettings

    @classmethod
    def of(cls, spans: Sequence[tuple[int, int]], sample_rate: int, settings: DuckSettings) -> "DuckEnvelope":
        """Spans closer than hold + release + attack are joined: the background would not come back
        up between them anyway, so it stays down instead of dipping."""
        bridge = ms_to_samples(settings.hold_ms + settings.release_ms + settings.attack_ms, sample_rate)
        merged: list[tuple[int, int]] = []
        for start, end in sorted((int(s), int(e)) for s, e in spans if e > s):
            if merged and start - merged[-1][1] < bridge:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return cls(tuple(merged), sample_rate, settings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_attack", ms_to_samples(self.settings.attack_ms, self.sample_rate))
        object.__setattr__(self, "_hold", ms_to_samples(self.settings.hold_ms, self.sample_rate))
        object.__setattr__(self, "_release", ms_to_samples(self.settings.release_ms, self.sample_rate))
        object.__setattr__(self, "_starts", [start for start, _ in self.spans])
        # The longest reach of a span after its start, so a block finds every span touching it.
        longest = max((end - start for start, end in self.spans), default=0)
        object.__setattr__(self, "_reach", longest + self._hold + self._release)

    def gains(self, start: int, count: int) -> np.ndarray:
        """Linear gains (float32) for samples ``[start, start + count)``."""
        depth = self.settings.depth_db
        if depth == 0.0 or not self.spans or count <= 0:
            return np.ones(max(count, 0), np.float32)
        amount = np.zeros(count, np.float64)
        first = bisect.bisect_left(self._starts, start - self._reach)
        last = bisect.bisect_right(self._starts, start + count + self._attack)
        positions = None
        for span_start, span_end in self.spans[first:last]:
            ramp_from = span_start - self._attack
            free_from = span_end + self._hold + self._release
            if free_from <= start or ramp_from >= start + count:
                continue
            if positions is None:
                positions = np.arange(start, start + count, dtype=np.float64)
            amount = np.maximum(amount, self._shape(positions, span_start, span_end))
        return (10.0 ** (-depth * amount / 20.0)).astype(np.float32)

    def _shape(self, t: np.ndarray, span_start: int, span_end: int) -> np.ndarray:
        """0 (no duck) … 1 (full depth) for positions ``t`` around one span."""
        shape = np.zeros_like(t)
        hold_end = span_end + self._hold
        full = (t >= span_start) & (t < hold_end)
        shape[full] = 1.0
        if self._attack:
            rising = (t >= span_start - self._attack) & (t < span_start)
            shape[rising] = _raised_cosine((t[rising] - (span_start - self._attack) + 0.5) / self._attack)
        if self._release:
            falling = (t >= hold_end) & (t < hold_end + self._release)
            shape[falling] = 1.0 - _raised_cosine((t[falling] - hold_end + 0.5) / self._release)
        return shape


def _raised_cosine(phase: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(phase, 0.0, 1.0))
