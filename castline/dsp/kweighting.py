"""ITU-R BS.1770 K-weighting filter (pre-filter shelf + RLB high-pass) for any sample rate.

BS.1770 tabulates the two biquads only at 48 kHz. Here they are derived from their analog
prototypes with the bilinear transform (frequency pre-warped through ``tan(pi * f / fs)``),
using the prototype parameters fitted by Brecht De Man (the ``DeMan`` filter class of
pyloudnorm). At 48 kHz this reproduces the BS.1770 coefficients to ~1e-9; at other rates it
gives the same analog response, which a re-tuned RBJ "cookbook" design does not.
"""

from __future__ import annotations

import math

import numpy as np

SHELF_GAIN_DB = 3.99984385397
"""High-frequency gain of the stage-1 shelving filter (dB)."""
SHELF_Q = 0.7071752369554193
SHELF_CENTER_HZ = 1681.9744509555319
HIGHPASS_Q = 0.5003270373253953
HIGHPASS_CENTER_HZ = 38.13547087613982
_SHELF_VB_EXPONENT = 0.499666774155


def shelf_biquad(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1 (head-related high shelf) as ``(b, a)``, ``a[0] == 1``, for ``sample_rate`` Hz."""
    k = math.tan(math.pi * SHELF_CENTER_HZ / _checked_rate(sample_rate))
    vh = 10.0 ** (SHELF_GAIN_DB / 20.0)
    vb = vh ** _SHELF_VB_EXPONENT
    a0 = 1.0 + k / SHELF_Q + k * k
    b = np.array([(vh + vb * k / SHELF_Q + k * k) / a0,
                  2.0 * (k * k - vh) / a0,
                  (vh - vb * k / SHELF_Q + k * k) / a0])
    a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / SHELF_Q + k * k) / a0])
    return b, a


def highpass_biquad(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 (RLB high-pass) as ``(b, a)``, ``a[0] == 1``, for ``sample_rate`` Hz.

    The numerator is left unnormalised (``[1, -2, 1]``) exactly as BS.1770 tabulates it.
    """
    k = math.tan(math.pi * HIGHPASS_CENTER_HZ / _checked_rate(sample_rate))
    a0 = 1.0 + k / HIGHPASS_Q + k * k
    b = np.array([1.0, -2.0, 1.0])
    a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / HIGHPASS_Q + k * k) / a0])
    return b, a


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Both K-weighting stages as second-order sections, shape ``(2, 6)`` (scipy ``sos`` layout)."""
    sections = [np.concatenate(shelf_biquad(sample_rate)),
                np.concatenate(highpass_biquad(sample_rate))]
    return np.vstack(sections)


def _checked_rate(sample_rate: int) -> int:
    if sample_rate <= 2 * SHELF_CENTER_HZ:
        raise ValueError(f"sample_rate must exceed {2 * SHELF_CENTER_HZ:.0f} Hz, got {sample_rate}")
    return sample_rate
