"""The one place audio changes sample rate: engine output → the project rate."""

from __future__ import annotations

import math

import numpy as np


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser window) of float32 mono or (channels, samples).

    The output length is ``ceil(samples * target_rate / source_rate)``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if source_rate == target_rate:
        return audio
    from scipy.signal import resample_poly

    divisor = math.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    return resample_poly(audio, up, down, axis=-1, window=("kaiser", 8.0)).astype(np.float32)
