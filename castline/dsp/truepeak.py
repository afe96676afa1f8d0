"""Streaming true-peak measurement (ITU-R BS.1770 Annex 2) by polyphase FIR interpolation.

The interpolator is a Kaiser-windowed sinc, 16 taps per phase, 4x oversampling below 96 kHz
and 2x at 96 kHz and above. Every phase is a Nyquist filter, so phase 0 is the input sample
itself; each interpolated phase is normalised to unity gain at DC. Interpolated values are
computed *centred* (no group delay): the envelope value for sample ``n`` is the largest
magnitude among ``x[n]`` and the interpolated points at ``n + p / oversampling``,
``p = 1 .. oversampling - 1``, i.e. between ``n`` and ``n + 1``.

The signal is taken to be silent before its first and after its last sample, so the points
between the last sample and the silence after it are included.

Most of a programme cannot set its maximum: a cheap bound from each stretch's size, slope and
curvature (``envelope_bound``) lets the meter and the limiter leave out stretches that provably
stay under the level they care about, without changing any value they read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HALF_TAPS = 8
"""Each interpolated phase uses samples ``n - HALF_TAPS + 1 .. n + HALF_TAPS`` (16 taps)."""
KAISER_BETA = 5.5
_CHUNK_SAMPLES = 32_768
"""Envelope values are computed in stretches of at most this many samples (temporaries stay in
cache; measured fastest from 16k to 64k)."""
_SKIP_SAMPLES = 2048
"""Granularity at which stretches the caller marked skippable are left out."""
# Streams cut huge blocks into pieces of this size so temporaries stay small.
_STREAM_CHUNK_SAMPLES = 65_536


@dataclass(frozen=True)
class TruePeakFilter:
    """Polyphase interpolation coefficients folded for symmetric evaluation.

    With ``u_d = x[n+d] + x[n+1-d]`` and ``v_d = x[n+d] - x[n+1-d]`` for ``d = 1 .. HALF_TAPS``:
    rows of ``sum_matrix @ u`` are the even parts of each phase pair ``(p, oversampling - p)``
    followed (4x only) by the self-symmetric middle phase; rows of ``diff_matrix @ v`` are the
    odd parts of each pair. Phase ``p`` is ``even + odd``, its mirror ``even - odd``.
    """

    oversampling: int
    sum_matrix: np.ndarray
    diff_matrix: np.ndarray
    pairs: int
    has_middle: bool
    bound: tuple[float, float, float]
    """``(k0, k1, k2)``: no envelope value exceeds ``k0 * max|x| + k1 * max|dx| + k2 * max|d2x|``
    over the samples it is built from (``envelope_bound``)."""


def oversampling_for(sample_rate: int) -> int:
    """Oversampling factor BS.1770 asks for: 4 below 96 kHz, 2 from 96 kHz."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return 4 if sample_rate < 96_000 else 2


def design_true_peak_filter(sample_rate: int) -> TruePeakFilter:
    """Interpolation filter for ``sample_rate`` Hz (only the oversampling factor depends on it)."""
    factor = oversampling_for(sample_rate)
    half_span = factor * HALF_TAPS
    t = np.arange(-half_span, half_span + 1)
    prototype = np.sinc(t / factor) * np.kaiser(t.size, KAISER_BETA)
    offsets = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)

    def phase(p: int) -> np.ndarray:
        taps = prototype[factor * offsets - p + half_span]
        return taps / taps.sum()

    pos = slice(HALF_TAPS, None)          # d = 1 .. HALF_TAPS
    neg = slice(HALF_TAPS - 1, None, -1)  # 1 - d = 0 .. -HALF_TAPS + 1
    sum_rows, diff_rows = [], []
    pairs = (factor - 1) // 2
    for p in range(1, pairs + 1):
        c = phase(p)
        sum_rows.append((c[pos] + c[neg]) / 2)
        diff_rows.append((c[pos] - c[neg]) / 2)
    has_middle = factor % 2 == 0
    if has_middle:
        sum_rows.append(phase(factor // 2)[pos])
    sum_matrix = np.asarray(sum_rows, dtype=np.float32)
    diff_matrix = np.asarray(diff_rows, dtype=np.float32).reshape(pairs, HALF_TAPS)
    return TruePeakFilter(
        oversampling=factor,
        sum_matrix=sum_matrix,
        diff_matrix=diff_matrix,
        pairs=pairs,
        has_middle=has_middle,
        bound=envelope_bound(sum_matrix, diff_matrix, pairs),
    )


def envelope_bound(sum_matrix: np.ndarray, diff_matrix: np.ndarray, pairs: int) -> tuple[float, float, float]:
    """``(k0, k1, k2)`` bounding the envelope by the signal's size, slope and curvature.

    Each interpolated phase ``y = sum_k c[k] x[n + k]`` (taps as the float32 matrices hold them)
    is split exactly into a linear interpolation between ``x[n]`` and ``x[n + 1]`` and a
    residual. The residual kernel, less its sum ``A`` and first moment ``B``, has no constant
    or linear part, so it is a second difference of some kernel ``w`` (summation by parts):
    ``y = lin + A x[n] + B (x[n+1] - x[n]) + sum_j w[j] d2x[n + j]``. Hence
    ``|y| <= (1 + |A|) max|x| + |B| max|dx| + L1(w) max|d2x|`` over the samples ``y`` reads.
    For audio whose energy lies well below Nyquist (speech) the last two terms are small, so
    the bound sits a fraction of a dB above the sample peak, where a plain L1 bound on the
    taps sits 6 dB above it. The float32 evaluation adds rounding of order 1e-6 of
    ``max|x|``; ``k0`` carries a 1e-4 margin and ``k1``, ``k2`` 1 %, far above it.
    """
    offsets = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)
    s = sum_matrix.astype(np.float64)
    t = diff_matrix.astype(np.float64)
    phases = []  # each phase's taps over offsets -7..8, as the float32 evaluation applies them
    for k in range(pairs):
        taps = np.concatenate([(s[k] - t[k])[::-1], s[k] + t[k]])
        phases.append(taps)
        phases.append(taps[::-1])
    for k in range(pairs, s.shape[0]):
        phases.append(np.concatenate([s[k][::-1], s[k]]))
    # second difference (offsets -7..8) of w (offsets -6..7): column j holds 1, -2, 1
    second_difference = np.zeros((offsets.size, offsets.size - 2))
    for column in range(offsets.size - 2):
        second_difference[column:column + 3, column] = (1.0, -2.0, 1.0)
    k0 = k1 = k2 = 0.0
    for taps in phases:
        residual = taps.copy()
        constant = residual.sum() - 1.0
        # the linear-interpolation weights that match the kernel's first moment
        fraction = float(offsets @ taps) / float(taps.sum())
        if not 0.0 <= fraction <= 1.0:
            raise AssertionError("an interpolated phase lies outside its two samples")
        residual[HALF_TAPS - 1] -= 1.0 - fraction
        residual[HALF_TAPS] -= fraction
        slope = float(offsets @ residual)
        residual[HALF_TAPS - 1] -= residual.sum() - slope
        residual[HALF_TAPS] -= slope
        w, *_ = np.linalg.lstsq(second_difference, residual, rcond=None)
        if not np.allclose(second_difference @ w, residual, rtol=0, atol=1e-12):
            raise AssertionError("interpolation residual is not a second difference")
        k0 = max(k0, 1.0 + abs(constant))
        k1 = max(k1, abs(slope))
        k2 = max(k2, float(np.abs(w).sum()))
    return k0 + 1e-4, k1 * 1.01 + 1e-6, k2 * 1.01 + 1e-6


def true_peak_envelope(extended: np.ndarray, filt: TruePeakFilter, skippable: np.ndarray | None = None,
                       floor: float | None = None) -> np.ndarray:
    """Per-sample true-peak envelope of a stretch of one channel (linear full scale).

    ``extended`` is float32 ``(n + 2 * HALF_TAPS - 1,)``: ``HALF_TAPS - 1`` samples of history,
    the ``n`` samples of interest, then ``HALF_TAPS`` samples of lookahead. Returns ``(n,)``
    float32: for each sample, the largest magnitude over it and its interpolated points up to
    the next sample. Values the caller does not need may be returned as 0 without being
    computed: runs of outputs whose whole interpolation reach is ``skippable`` (bool, shaped
    like ``extended``), and runs whose bound (``TruePeakFilter.bound``) shows that no value
    there exceeds ``floor``. Every value returned otherwise is the same float32 result
    whatever is skipped around it.
    """
    n = extended.shape[-1] - (2 * HALF_TAPS - 1)
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    for start, stop in _stretches_to_compute(extended, filt, skippable, floor):
        for first in range(start, stop, _CHUNK_SAMPLES):
            last = min(first + _CHUNK_SAMPLES, stop)
            out[first:last] = _envelope_chunk(extended[first:last + 2 * HALF_TAPS - 1], filt)
    return out


def _stretches_to_compute(extended: np.ndarray, filt: TruePeakFilter, skippable: np.ndarray | None,
                          floor: float | None) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of output samples to compute: all of them, less each
    ``_SKIP_SAMPLES`` piece whose whole interpolation reach is skippable or whose bound is
    at most ``floor``."""
    reach = 2 * HALF_TAPS - 1
    n = extended.shape[-1] - reach
    if skippable is None and floor is None:
        return [(0, n)]
    starts = np.arange(0, n, _SKIP_SAMPLES)
    stops = np.minimum(starts + _SKIP_SAMPLES, n)
    # a piece's reach: its own samples, then the first ``reach`` after it
    overhang = stops[:, np.newaxis] + np.arange(reach)
    needed = np.ones(starts.size, dtype=bool)
    if skippable is not None:
        wanted = ~skippable[:n + reach]
        needed = np.logical_or.reduceat(wanted[:n], starts)
        needed |= wanted[overhang].any(axis=1)
    if floor is not None and needed.any():
        x = extended[:n + reach]
        bound = np.zeros(starts.size)
        slope = x[1:] - x[:-1]
        curvature = slope[1:] - slope[:-1]
        np.abs(curvature, out=curvature)
        np.abs(slope, out=slope)
        for values, factor in zip((np.abs(x), slope, curvature), filt.bound):
            # over each piece's reach (clipped at the end: maxima over a superset are still bounds)
            largest = np.maximum(np.maximum.reduceat(values[:n], starts),
                                 values[np.minimum(overhang, values.size - 1)].max(axis=1))
            bound += factor * largest.astype(np.float64)
        needed &= ~(bound <= floor)  # a NaN bound is computed
    stretches: list[tuple[int, int]] = []
    for start, stop in zip(starts[needed].tolist(), stops[needed].tolist()):
        if stretches and stretches[-1][1] == start:
            stretches[-1] = (stretches[-1][0], stop)
        else:
            stretches.append((start, stop))
    return stretches


def _envelope_chunk(extended: np.ndarray, filt: TruePeakFilter) -> np.ndarray:
    # Each output sample is built from the same float32 multiplies and adds in the same order
    # (tap d = 1 .. HALF_TAPS, one rounding per operation) whatever the stretch's length, so
    # the envelope is bit-identical however a stream is cut into blocks. A matrix product
    # would hand the sums to BLAS, whose kernels (and so summation order) vary with the
    # number of columns and the CPU.
    n = extended.shape[-1] - (2 * HALF_TAPS - 1)
    centre = HALF_TAPS - 1
    rows = filt.sum_matrix.shape[0]
    even = np.zeros((rows, n), dtype=np.float32)
    odd = np.zeros((filt.pairs, n), dtype=np.float32)
    folded = np.empty(n, dtype=np.float32)
    term = np.empty(n, dtype=np.float32)
    for d in range(1, HALF_TAPS + 1):
        ahead = extended[centre + d:centre + d + n]
        behind = extended[centre + 1 - d:centre + 1 - d + n]
        np.add(ahead, behind, out=folded)
        for k in range(rows):
            np.multiply(folded, filt.sum_matrix[k, d - 1], out=term)
            even[k] += term
        if filt.pairs:
            np.subtract(ahead, behind, out=folded)
            for k in range(filt.pairs):
                np.multiply(folded, filt.diff_matrix[k, d - 1], out=term)
                odd[k] += term
    np.abs(even, out=even)
    np.abs(odd, out=odd)
    env = np.abs(extended[centre:centre + n])
    for k in range(filt.pairs):
        # max(|e + o|, |e - o|) == |e| + |o|
        pair = even[k]
        pair += odd[k]
        np.maximum(env, pair, out=env)
    if filt.has_middle:
        np.maximum(env, even[filt.pairs], out=env)
    return env


class TruePeakEnvelope:
    """Streaming per-sample true-peak envelope, linked across channels (max over channels).

    ``process`` returns envelope values for the samples whose lookahead has arrived (it lags
    the input by ``delay_samples``); ``flush`` returns the rest, treating the signal as
    silent after its end. Concatenated outputs have exactly the input length.
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.filter = design_true_peak_filter(sample_rate)
        self._history = np.zeros((channels, HALF_TAPS - 1), dtype=np.float32)
        self._skippable_history = np.ones(HALF_TAPS - 1, dtype=bool)
        self._flushed = False

    @property
    def delay_samples(self) -> int:
        """How many samples the envelope lags the input until ``flush``."""
        return HALF_TAPS

    def process(self, block: np.ndarray, skippable: np.ndarray | None = None,
                floor: float | None = None) -> np.ndarray:
        """Feed ``(samples,)`` or ``(channels, samples)``; returns the ready envelope ``(k,)`` float32.

        ``skippable``: optional bool ``(samples,)``, True where the caller already knows the
        sample is below whatever threshold it cares about; where every sample an envelope value
        depends on is skippable, that value is reported as 0 instead of being computed.
        ``floor``: values the caller does not need unless they exceed it; where the bound shows
        none can, they are reported as 0 (values above it are always exact).
        """
        if self._flushed:
            raise RuntimeError("process() after flush()")
        block = as_channels_first(block, self.channels)
        if skippable is None:
            skippable = np.zeros(block.shape[1], dtype=bool)
        if block.shape[1] <= _STREAM_CHUNK_SAMPLES:
            return self._advance(block, skippable, floor)
        step = _STREAM_CHUNK_SAMPLES
        return np.concatenate([self._advance(block[:, s:s + step], skippable[s:s + step], floor)
                               for s in range(0, block.shape[1], step)])

    def flush(self) -> np.ndarray:
        """Envelope of the remaining samples (silence assumed after the end)."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        return self._advance(np.zeros((self.channels, HALF_TAPS), dtype=np.float32),
                             np.ones(HALF_TAPS, dtype=bool))

    def peek_tail(self) -> np.ndarray:
        """Envelope the pending samples would have if the signal ended now (state unchanged)."""
        return self._envelope(np.concatenate(
            [self._history, np.zeros((self.channels, HALF_TAPS), dtype=np.float32)], axis=1))

    def _advance(self, block: np.ndarray, skippable: np.ndarray, floor: float | None = None) -> np.ndarray:
        extended = np.concatenate([self._history, block], axis=1)
        extended_skippable = np.concatenate([self._skippable_history, skippable])
        keep = 2 * HALF_TAPS - 1
        if extended.shape[1] <= keep:
            self._history = extended
            self._skippable_history = extended_skippable
            return np.zeros(0, dtype=np.float32)
        self._history = extended[:, -keep:].copy()
        self._skippable_history = extended_skippable[-keep:].copy()
        return self._envelope(extended, extended_skippable if extended_skippable.any() else None, floor)

    def _envelope(self, extended: np.ndarray, skippable: np.ndarray | None = None,
                  floor: float | None = None) -> np.ndarray:
        env = true_peak_envelope(extended[0], self.filter, skippable, floor)
        for ch in range(1, self.channels):
            np.maximum(env, true_peak_envelope(extended[ch], self.filter, skippable, floor), out=env)
        return env


class TruePeakMeter:
    """Streaming maximum true peak over all channels (dBTP), BS.1770 Annex 2 style.

    Feed blocks with ``process``; read ``true_peak_dbtp`` at any time (it includes the
    interpolated points after the last sample fed so far, as if the signal ended there).
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        self._envelope = TruePeakEnvelope(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._peak_linear = 0.0

    @property
    def oversampling(self) -> int:
        """Oversampling factor used (4 below 96 kHz, 2 from 96 kHz)."""
        return self._envelope.filter.oversampling

    def process(self, block: np.ndarray) -> None:
        """Feed ``(samples,)`` (mono) or ``(channels, samples)`` float32/float64 audio."""
        block = np.asarray(block)
        block = as_channels_first(block, self.channels, dtype=block.dtype)
        for start in range(0, block.shape[1], _STREAM_CHUNK_SAMPLES):
            chunk = block[:, start:start + _STREAM_CHUNK_SAMPLES]
            # Only values above the peak so far can change it. Every sample's envelope is at
            # least its magnitude, and a skipped stretch's bound exceeds each of its samples'
            # magnitudes, so the largest sample fed is always reached: the maximum is exact.
            floor = max(self._peak_linear, float(np.abs(chunk).max())) if chunk.size else None
            env = self._envelope.process(chunk, floor=floor)
            if env.size:
                self._peak_linear = max(self._peak_linear, float(env.max()))

    @property
    def true_peak_linear(self) -> float:
        """Maximum true peak so far as a linear full-scale magnitude (1.0 == 0 dBTP)."""
        tail = self._envelope.peek_tail()
        return max(self._peak_linear, float(tail.max()) if tail.size else 0.0)

    @property
    def true_peak_dbtp(self) -> float:
        """Maximum true peak so far in dBTP; ``-inf`` for silence or no input."""
        return linear_to_db(self.true_peak_linear)


def measure_true_peak_dbtp(signal: np.ndarray, sample_rate: int) -> float:
    """True peak (dBTP) of a whole ``(samples,)`` or ``(channels, samples)`` signal."""
    channels = 1 if signal.ndim == 1 else signal.shape[0]
    meter = TruePeakMeter(sample_rate, channels)
    meter.process(signal)
    return meter.true_peak_dbtp


def linear_to_db(value: float) -> float:
    """``20 * log10(value)`` with ``-inf`` for zero."""
    return 20.0 * math.log10(value) if value > 0.0 else -math.inf


def as_channels_first(block: np.ndarray, channels: int, dtype: type = np.float32) -> np.ndarray:
    """Validate a ``(samples,)`` / ``(channels, samples)`` block and return it 2-D in ``dtype``."""
    block = np.asarray(block)
    if block.dtype not in (np.float32, np.float64):
        raise TypeError(f"audio must be float32 or float64, got {block.dtype}")
    if block.ndim == 1:
        if channels != 1:
            raise ValueError(f"got a mono (samples,) block but the stream has {channels} channels")
        block = block[np.newaxis, :]
    elif block.ndim != 2 or block.shape[0] != channels:
        raise ValueError(f"expected shape ({channels}, samples), got {block.shape}")
    return np.ascontiguousarray(block, dtype=dtype)
