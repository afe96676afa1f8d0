"""Per-chunk conditioning before joining: DC removal, silence trim, fades, crossfades."""

from __future__ import annotations

import functools

import numpy as np

from castline.dsp.iir import butterworth_highpass, filter_rows, steady_state


@functools.lru_cache(maxsize=8)
def _highpass_sos(sample_rate: int, cutoff_hz: float, order: int = 2) -> np.ndarray:
    return butterworth_highpass(order, cutoff_hz, sample_rate)


@functools.lru_cache(maxsize=8)
def _highpass_steady_state(sample_rate: int, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Filter state for a constant input of 1 (scale it by the first sample)."""
    return steady_state(_highpass_sos(sample_rate, cutoff_hz, order))


def remove_dc(audio: np.ndarray, sample_rate: int, cutoff_hz: float = 40.0, *, order: int = 2,
              zero_phase: bool = False) -> np.ndarray:
    """DC removal: a Butterworth high-pass of ``order`` (2nd by default) at ``cutoff_hz`` (Hz),
    on the signal less its mean.

    One pass by default (not zero-phase: half the cost, measured as the largest single cost of
    stitching); its group delay is under 1 ms above 200 Hz, so speech onsets do not move.
    The filter starts in the steady state of the first sample, so there is no start-up step.
    ``zero_phase`` runs it forwards and backwards instead (``sosfiltfilt``).
    """
    if audio.size <= 64 or zero_phase:
        centred = np.subtract(audio, float(np.mean(audio)), dtype=np.float64) if audio.size else audio.astype(np.float64)
        if centred.size <= 64:
            return centred.astype(np.float32)
        from scipy.signal import sosfiltfilt

        return sosfiltfilt(_highpass_sos(sample_rate, cutoff_hz, order), centred).astype(np.float32)
    # Started in the steady state of its first sample, the high-pass (zero gain at DC) gives,
    # in exact arithmetic, what it gives on the mean-subtracted signal; leaving the subtraction
    # out saves a float64 copy of the chunk (the filter's float64 copy is made from the float32 input).
    filtered = np.array(audio, dtype=np.float64, ndmin=2)
    state = (_highpass_steady_state(sample_rate, cutoff_hz, order) * float(audio[0]))[np.newaxis]
    filter_rows(_highpass_sos(sample_rate, cutoff_hz, order), filtered, state)
    return filtered[0].astype(np.float32)


def speech_bounds(audio: np.ndarray, sample_rate: int, threshold_dbfs: float = -45.0, frame_ms: float = 10.0,
                  keep_ms: float = 40.0) -> tuple[int, int]:
    """``(start, end)`` sample bounds of the audible part, keeping ``keep_ms`` either side.

    A frame is audible when its RMS is above ``threshold_dbfs``. With no audible frame the whole
    chunk is kept (quiet output is for QA to judge, not for trimming to delete).
    """
    frame = max(1, int(sample_rate * frame_ms / 1000))
    count = audio.size // frame
    if count == 0:
        return 0, audio.size
    threshold = 10 ** (threshold_dbfs / 20)

    def loud(first: int, last: int) -> np.ndarray:
        """Indices of the audible frames among frames ``first .. last - 1``."""
        frames = audio[first * frame:last * frame].astype(np.float64).reshape(last - first, frame)
        return first + np.flatnonzero(np.sqrt(np.mean(frames * frames, axis=1)) > threshold)

    # Only the edges matter: search from each end in growing steps instead of framing it all.
    first_loud = last_loud = None
    step, position = 16, 0
    while position < count and first_loud is None:
        found = loud(position, min(count, position + step))
        first_loud = int(found[0]) if found.size else None
        position, step = position + step, step * 2
    if first_loud is None:
        return 0, audio.size
    step, position = 16, count
    while last_loud is None:
        found = loud(max(first_loud, position - step), position)
        last_loud = int(found[-1]) if found.size else None
        position, step = position - step, step * 2
    keep = int(sample_rate * keep_ms / 1000)
    start = max(0, first_loud * frame - keep)
    end = min(audio.size, (last_loud + 1) * frame + keep)
    return int(start), int(end)


def raised_cosine(length: int) -> np.ndarray:
    """A 0→1 raised-cosine ramp of ``length`` samples."""
    if length <= 0:
        return np.zeros(0, np.float32)
    phase = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (0.5 - 0.5 * np.cos(np.pi * phase)).astype(np.float32)


def apply_fades(audio: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """Raised-cosine fade-in over the first ``fade_in`` and fade-out over the last ``fade_out`` samples."""
    out = audio.astype(np.float32, copy=True)
    fade_in, fade_out = min(fade_in, out.size), min(fade_out, out.size)
    if fade_in:
        out[:fade_in] *= raised_cosine(fade_in)
    if fade_out:
        out[out.size - fade_out:] *= raised_cosine(fade_out)[::-1]
    return out


def equal_power_crossfade(tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Overlap ``tail`` (fading out) and ``head`` (fading in) of equal length with sin/cos curves."""
    if tail.size != head.size:
        raise ValueError(f"crossfade parts differ in length: {tail.size} vs {head.size}")
    phase = (np.arange(tail.size, dtype=np.float64) + 0.5) / max(tail.size, 1) * (np.pi / 2)
    return (tail * np.cos(phase) + head * np.sin(phase)).astype(np.float32)
