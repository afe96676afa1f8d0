"""The one place audio changes sample rate: engine output → the project rate.

Polyphase resampling exactly as ``scipy.signal.resample_poly(x, up, down, window=("kaiser",
8.0))`` does it, bit for bit: the same Kaiser-windowed sinc low-pass (designed here as
``scipy.signal.firwin`` designs it, with ``scipy.special.i0``), the same padding, and scipy's own
compiled loop (``scipy.signal._upfirdn_apply``), loaded without the ``scipy.signal`` package
(``castline.core.scipy_extensions``: that import cost a render with QA about 48 MB and 0.9 CPU-s).
Where that loop cannot be loaded, ``resample_poly`` itself runs.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from castline.core.scipy_extensions import signal_extension

KAISER_BETA = 8.0
"""The low-pass filter's Kaiser window shape: stop-band attenuation of about 80 dB."""


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (Kaiser window) of float32 mono or (channels, samples).

    ``source_rate`` and ``target_rate`` in Hz. The output length is
    ``ceil(samples * target_rate / source_rate)``; float32.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if source_rate == target_rate:
        return audio
    divisor = math.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    loop = _upfirdn_loop()
    if loop is None:
        from scipy.signal import resample_poly

        return resample_poly(audio, up, down, axis=-1, window=("kaiser", KAISER_BETA)).astype(np.float32)
    return _resample_poly(audio, up, down, loop)


def _resample_poly(audio: np.ndarray, up: int, down: int, loop) -> np.ndarray:
    """``resample_poly`` along the last axis, with the default constant (zero) padding."""
    samples_in = audio.shape[-1]
    samples_out = -(-samples_in * up // down)
    taps, pre_remove = _padded_taps(up, down, samples_in, loop._output_len)
    output = np.zeros((*audio.shape[:-1], loop._output_len(taps.size, samples_in, up, down)), dtype=np.float32)
    loop._apply(np.ascontiguousarray(audio), _flipped_phases(taps, up), output, up, down, audio.ndim - 1,
                 loop.mode_enum("constant"), 0)
    return output[..., pre_remove:pre_remove + samples_out]


def _padded_taps(up: int, down: int, samples_in: int, output_len) -> tuple[np.ndarray, int]:
    """The filter, scaled by ``up`` and zero-padded so output sample 0 lines up with input sample
    0, and how many output samples to drop at the start (scipy's ``resample_poly``).
    ``output_len(taps, samples_in, up, down)``: the length of the whole filtered output."""
    taps = _lowpass(up, down)
    half = (taps.size - 1) // 2
    pre_pad = down - half % down
    pre_remove = (half + pre_pad) // down
    samples_out = -(-samples_in * up // down)
    post_pad = 0
    while output_len(taps.size + pre_pad + post_pad, samples_in, up, down) < samples_out + pre_remove:
        post_pad += 1
    padded = np.concatenate((np.zeros(pre_pad, np.float32), taps, np.zeros(post_pad, np.float32)))
    return padded, pre_remove


@functools.lru_cache(maxsize=32)
def _lowpass(up: int, down: int) -> np.ndarray:
    """``firwin(20 * max(up, down) + 1, 1 / max(up, down), window=("kaiser", 8.0))`` as float32,
    times ``up``; read-only (cached)."""
    from scipy.special import i0

    rate = max(up, down)
    count, cutoff = 20 * rate + 1, 1.0 / rate
    middle = 0.5 * (count - 1)
    offsets = np.arange(0, count, dtype=np.float64) - middle
    taps = cutoff * np.sinc(cutoff * offsets)
    taps *= i0(KAISER_BETA * np.sqrt(1 - (offsets / middle) ** 2.0)) / i0(np.float64(KAISER_BETA))
    taps /= np.sum(taps)  # unit gain at 0 Hz
    scaled = taps.astype(np.float32)
    scaled *= up
    scaled.flags.writeable = False
    return scaled


def _flipped_phases(taps: np.ndarray, up: int) -> np.ndarray:
    """The taps as scipy's loop reads them: one row per phase, each reversed (``_pad_h``)."""
    padded = np.zeros(taps.size + (-taps.size % up), taps.dtype)
    padded[:taps.size] = taps
    return np.ascontiguousarray(padded.reshape(-1, up).T[:, ::-1].ravel())


@functools.cache
def _upfirdn_loop():
    """scipy's ``_upfirdn_apply`` module, if it has the functions used here and they resample a
    short probe as the same filter written out in numpy does (to float32 rounding); else None."""
    module = signal_extension("_upfirdn_apply")
    if module is None or not all(hasattr(module, name) for name in ("_apply", "_output_len", "mode_enum")):
        return None
    probe = np.array([[0.5, -1.0, 0.25, 1.0, 0.0, -0.5, 0.75]], dtype=np.float32)
    try:
        ours = _resample_poly(probe, 3, 2, module)
    except Exception:
        return None
    return module if ours.shape == (1, 11) and np.allclose(ours, _written_out(probe[0], 3, 2), atol=1e-6) else None


def _written_out(audio: np.ndarray, up: int, down: int) -> np.ndarray:
    """The same resampling of one row, written out: zero-stuff, convolve, keep every ``down``-th."""
    taps, pre_remove = _padded_taps(up, down, audio.size, _full_length)
    stuffed = np.zeros(audio.size * up)
    stuffed[::up] = audio
    return np.convolve(stuffed, taps)[::down][pre_remove:pre_remove - (-audio.size * up // down)]


def _full_length(taps: int, samples_in: int, up: int, down: int) -> int:
    """Samples of the whole filtered output (as scipy's ``_output_len``)."""
    return ((samples_in - 1) * up + taps - 1) // down + 1
