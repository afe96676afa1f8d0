"""Streaming loudness meter: ITU-R BS.1770-5 / EBU R 128 (Tech 3341, Tech 3342).

Only per-100 ms sub-block powers are kept (two float64 values per 100 ms), plus filter state
and the samples of the unfinished sub-block, so memory grows with duration / 100 ms and never
with the signal itself. Every reading is derived from those sub-block powers, which are
bit-identical whatever the block sizes fed, so readings do not depend on block size.

Mono convention (project-wide): with ``mono_as_dual_mono=True`` a one-channel signal is
measured as if played on two channels (left = right), i.e. 10*log10(2) = 3.01 dB above its
one-channel BS.1770 reading. A mono file at -16 LUFS therefore has the loudness of a -19 LUFS
(one-channel) measurement and equals the same audio copied to both channels of a stereo file.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from castline.dsp.iir import filter_rows
from castline.dsp.kweighting import k_weighting_sos
from castline.dsp.truepeak import TruePeakMeter, as_channels_first, linear_to_db

LOUDNESS_OFFSET_DB = -0.691
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_LOW_PERCENTILE = 10.0
LRA_HIGH_PERCENTILE = 95.0
SUB_BLOCKS_PER_SECOND = 10
MOMENTARY_SUB_BLOCKS = 4
SHORT_TERM_SUB_BLOCKS = 30
SURROUND_WEIGHT = 1.41
_CHUNK_SAMPLES = 65_536


@dataclass(frozen=True)
class LoudnessReading:
    """Loudness statistics of everything fed to a ``LoudnessMeter`` so far.

    ``integrated_lufs``: gated integrated loudness (LUFS), ``-inf`` when silent or shorter
    than one 400 ms block. ``loudness_range_lu``: EBU Tech 3342 LRA (LU), 0.0 when there are
    no usable 3 s windows. ``max_momentary_lufs`` / ``max_short_term_lufs``: largest 400 ms /
    3 s loudness (LUFS), ``-inf`` when too short. ``sample_peak_dbfs``: largest absolute sample
    (dBFS). ``rms_dbfs``: unweighted RMS over all samples, averaged over channels (dBFS, a
    full-scale sine reads -3.01). ``true_peak_dbtp``: maximum true peak (dBTP), ``None`` when
    the meter was built with ``true_peak=False``. ``duration_samples``: samples per channel.
    """

    integrated_lufs: float
    loudness_range_lu: float
    max_momentary_lufs: float
    max_short_term_lufs: float
    sample_peak_dbfs: float
    rms_dbfs: float
    duration_samples: int
    sample_rate: int
    channels: int
    true_peak_dbtp: float | None = None


class LoudnessMeter:
    """Streaming BS.1770 meter for ``channels`` channels at ``sample_rate`` Hz.

    Feed ``(samples,)`` (mono) or ``(channels, samples)`` float32/float64 blocks of any size to
    ``process``; call ``result`` at any time (and again after more blocks). Channel weights are
    1.0, except 1.41 for the surround pair of 5-channel (L R C Ls Rs) input and 0 for the LFE
    of 6-channel (L R C LFE Ls Rs) input.
    """

    def __init__(self, sample_rate: int, channels: int, *, mono_as_dual_mono: bool = True,
                 true_peak: bool = True) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.mono_as_dual_mono = mono_as_dual_mono
        self._sos = k_weighting_sos(sample_rate)
        self._filter_state = np.zeros((channels, self._sos.shape[0], 2))
        self._weights = _channel_weights(channels, mono_as_dual_mono)
        self._true_peak = TruePeakMeter(sample_rate, channels) if true_peak else None
        # squared samples of the unfinished sub-block: K-weighted (row 0..C-1), raw (C..2C-1)
        self._pending = np.zeros((2 * channels, 0))
        self._squares = np.empty((2 * channels, _CHUNK_SAMPLES))
        self._weighted_powers = _GrowingArray()
        self._raw_powers = _GrowingArray()
        self._samples = 0
        self._peak_linear = 0.0

    def process(self, block: np.ndarray) -> None:
        """Feed ``(samples,)`` or ``(channels, samples)`` float32/float64 audio (full scale 1.0)."""
        block = np.asarray(block)
        data = as_channels_first(block, self.channels, dtype=block.dtype)
        if self._true_peak is not None:
            self._true_peak.process(data)
        for start in range(0, data.shape[1], _CHUNK_SAMPLES):
            self._process_chunk(data[:, start:start + _CHUNK_SAMPLES])

    def _process_chunk(self, chunk: np.ndarray) -> None:
        if chunk.shape[1] == 0:
            return
        self._peak_linear = max(self._peak_linear, float(chunk.max()), float(-chunk.min()))
        c = self.channels
        # One buffer for every chunk: glibc hands fresh blocks this size (1 MB) straight from and
        # back to the kernel, and a new one per chunk measured ~80k page faults per 30-minute master.
        squares = self._squares[:, :chunk.shape[1]]
        # K-weighted in float64, whatever the input's float type, in the buffer itself; one
        # channel at a time (a row of the buffer is contiguous, the first rows together are not).
        for channel in range(c):
            row = squares[channel:channel + 1]
            row[0] = chunk[channel]
            filter_rows(self._sos, row, self._filter_state[channel:channel + 1])
        np.square(squares[:c], out=squares[:c])
        np.square(chunk, out=squares[c:], dtype=np.float64)
        chunk_start = self._samples
        self._samples += chunk.shape[1]
        first = self._completed_sub_blocks()
        last = (self._samples * SUB_BLOCKS_PER_SECOND) // self.sample_rate
        while self._boundary(last) > self._samples:
            last -= 1
        if last == first:
            self._pending = np.concatenate([self._pending, squares], axis=1)
            return
        # Each sub-block is summed from one contiguous run of its own samples, whatever the
        # block boundaries, so the sums (and every reading) do not depend on block size.
        head = self._boundary(first + 1) - chunk_start
        sums = [np.add.reduceat(np.concatenate([self._pending, squares[:, :head]], axis=1),
                                [0], axis=1)]
        if last > first + 1:
            offsets = [self._boundary(k) - chunk_start for k in range(first + 1, last + 1)]
            sums.append(np.add.reduceat(squares[:, :offsets[-1]], offsets[:-1], axis=1))
        sums = np.concatenate(sums, axis=1)
        self._weighted_powers.extend((self._weights[:, np.newaxis] * sums[:c]).sum(axis=0))
        self._raw_powers.extend(sums[c:].sum(axis=0))
        self._pending = squares[:, self._boundary(last) - chunk_start:].copy()

    def _completed_sub_blocks(self) -> int:
        return len(self._weighted_powers)

    def _boundary(self, sub_block: int) -> int:
        """First sample of 100 ms sub-block ``sub_block``."""
        return (sub_block * self.sample_rate) // SUB_BLOCKS_PER_SECOND

    def _window_powers(self, sub_blocks: int) -> np.ndarray:
        """Mean-square (channel-weighted) power of each complete ``sub_blocks`` x 100 ms window,
        one window starting at every sub-block."""
        powers = self._weighted_powers.view()
        count = powers.size - sub_blocks + 1
        if count <= 0:
            return np.zeros(0)
        sums = sliding_window_view(powers, sub_blocks).sum(axis=1)
        starts = np.arange(count)
        lengths = ((starts + sub_blocks) * self.sample_rate) // SUB_BLOCKS_PER_SECOND \
            - (starts * self.sample_rate) // SUB_BLOCKS_PER_SECOND
        return sums / lengths

    def noise_floor_dbfs(self, window_sub_blocks: int = 5) -> float:
        """The quietest ``window_sub_blocks`` x 100 ms window (default 500 ms) as unweighted RMS
        in dBFS (channels averaged): an audiobook spec's noise floor (ACX: ≤ −60 dB).

        ``-inf`` when some window is digital silence; ``nan`` when the signal is shorter than one
        window. Derived from the sub-block powers the meter keeps anyway: no extra pass.
        """
        powers = self._raw_powers.view()
        count = powers.size - window_sub_blocks + 1
        if count <= 0:
            return math.nan
        sums = sliding_window_view(powers, window_sub_blocks).sum(axis=1)
        starts = np.arange(count)
        lengths = ((starts + window_sub_blocks) * self.sample_rate) // SUB_BLOCKS_PER_SECOND \
            - (starts * self.sample_rate) // SUB_BLOCKS_PER_SECOND
        lowest = float(np.min(sums / (lengths * self.channels)))
        return 10.0 * math.log10(lowest) if lowest > 0.0 else -math.inf

    def momentary_series(self) -> np.ndarray:
        """Momentary loudness (LUFS, 400 ms windows) every 100 ms; element ``i`` covers
        ``[i, i + 4)`` x 100 ms. ``-inf`` for silent windows."""
        return _to_lufs(self._window_powers(MOMENTARY_SUB_BLOCKS))

    def short_term_series(self) -> np.ndarray:
        """Short-term loudness (LUFS, 3 s windows) every 100 ms; element ``i`` covers
        ``[i, i + 30)`` x 100 ms, so it is empty for signals shorter than 3 s."""
        return _to_lufs(self._window_powers(SHORT_TERM_SUB_BLOCKS))

    def result(self) -> LoudnessReading:
        """Readings for everything fed so far (does not change the meter's state)."""
        momentary_powers = self._window_powers(MOMENTARY_SUB_BLOCKS)
        momentary = _to_lufs(momentary_powers)
        short_term = self.short_term_series()
        total_squares = math.fsum(self._raw_powers.view()) + math.fsum(
            self._pending[self.channels:].sum(axis=1))
        mean_square = total_squares / (self.channels * self._samples) if self._samples else 0.0
        return LoudnessReading(
            integrated_lufs=_integrated(momentary_powers, momentary),
            loudness_range_lu=_loudness_range(short_term),
            max_momentary_lufs=float(momentary.max()) if momentary.size else -math.inf,
            max_short_term_lufs=float(short_term.max()) if short_term.size else -math.inf,
            sample_peak_dbfs=linear_to_db(self._peak_linear),
            rms_dbfs=10.0 * math.log10(mean_square) if mean_square > 0.0 else -math.inf,
            duration_samples=self._samples,
            sample_rate=self.sample_rate,
            channels=self.channels,
            true_peak_dbtp=None if self._true_peak is None else self._true_peak.true_peak_dbtp,
        )


def measure_loudness(signal: np.ndarray, sample_rate: int, *,
                     mono_as_dual_mono: bool = True) -> LoudnessReading:
    """One-shot reading of a whole ``(samples,)`` or ``(channels, samples)`` signal."""
    channels = 1 if signal.ndim == 1 else signal.shape[0]
    meter = LoudnessMeter(sample_rate, channels, mono_as_dual_mono=mono_as_dual_mono)
    meter.process(signal)
    return meter.result()


def _channel_weights(channels: int, mono_as_dual_mono: bool) -> np.ndarray:
    weights = np.ones(channels)
    if channels == 1 and mono_as_dual_mono:
        weights[0] = 2.0
    elif channels == 5:
        weights[3:5] = SURROUND_WEIGHT
    elif channels == 6:
        weights[3] = 0.0
        weights[4:6] = SURROUND_WEIGHT
    return weights


def _to_lufs(powers: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return LOUDNESS_OFFSET_DB + 10.0 * np.log10(powers)


def _integrated(powers: np.ndarray, loudness: np.ndarray) -> float:
    """BS.1770 two-stage gated mean of the 400 ms block powers (75 % overlap)."""
    above_absolute = loudness > ABSOLUTE_GATE_LUFS
    if not above_absolute.any():
        return -math.inf
    relative_gate = float(_to_lufs(np.mean(powers[above_absolute]))) + RELATIVE_GATE_LU
    gated = above_absolute & (loudness > relative_gate)
    if not gated.any():
        return -math.inf
    return float(_to_lufs(np.mean(powers[gated])))


def _loudness_range(short_term: np.ndarray) -> float:
    """EBU Tech 3342 loudness range (LU) from 3 s short-term loudness values."""
    absolute = short_term[short_term >= ABSOLUTE_GATE_LUFS]
    if absolute.size == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_power = np.mean(10.0 ** (absolute / 10.0))
    relative = absolute[absolute >= 10.0 * np.log10(mean_power) + LRA_RELATIVE_GATE_LU]
    if relative.size == 0:
        return 0.0
    low, high = np.percentile(relative, [LRA_LOW_PERCENTILE, LRA_HIGH_PERCENTILE])
    return float(high - low)


class _GrowingArray:
    """Append-only float64 array with amortised doubling (no per-block Python objects)."""

    def __init__(self) -> None:
        self._data = np.zeros(64)
        self._size = 0

    def extend(self, values: np.ndarray) -> None:
        needed = self._size + values.size
        if needed > self._data.size:
            grown = np.zeros(max(needed, 2 * self._data.size))
            grown[:self._size] = self._data[:self._size]
            self._data = grown
        self._data[self._size:needed] = values
        self._size = needed

    def view(self) -> np.ndarray:
        return self._data[:self._size]

    def __len__(self) -> int:
        return self._size
