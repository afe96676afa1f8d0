"""Noise floor: the quietest stretch of a programme, as unweighted RMS (for audiobook specs)."""

from __future__ import annotations

import math

import numpy as np


class NoiseFloorMeter:
    """Streaming: the lowest RMS (dBFS) over consecutive ``window_ms`` windows.

    ACX asks for a noise floor ≤ −60 dB RMS; a programme whose pauses are digital silence
    reads ``-inf``. Memory is constant (one partial window).
    """

    def __init__(self, sample_rate: int, window_ms: float = 500.0) -> None:
        self.window = max(1, int(sample_rate * window_ms / 1000))
        self._pending = np.zeros(0, np.float64)
        self._lowest_mean_square = math.inf

    def process(self, block: np.ndarray) -> None:
        """``block``: float mono ``(samples,)`` or ``(channels, samples)`` (channels averaged)."""
        samples = np.asarray(block, dtype=np.float64)
        power = samples * samples if samples.ndim == 1 else np.mean(samples * samples, axis=0)
        data = np.concatenate([self._pending, power])
        whole = data.size // self.window
        if whole:
            means = data[:whole * self.window].reshape(whole, self.window).mean(axis=1)
            self._lowest_mean_square = min(self._lowest_mean_square, float(means.min()))
        self._pending = data[whole * self.window:]

    @property
    def noise_floor_dbfs(self) -> float:
        if math.isinf(self._lowest_mean_square):
            return math.nan  # shorter than one window
        if self._lowest_mean_square <= 0.0:
            return -math.inf
        return 10 * math.log10(self._lowest_mean_square)
