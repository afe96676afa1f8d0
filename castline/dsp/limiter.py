"""Streaming lookahead true-peak limiter with exact delay compensation.

Gain computer (vectorised per block, state carried across blocks):

1. ``r[n] = min(1, target / env[n])`` where ``env`` is the true-peak envelope
   (``castline.dsp.truepeak``): the gain sample ``n`` needs.
2. ``s[n] = min(r[n - H .. n + L - 1 + H])``: lookahead of ``L`` samples plus a hold of
   ``H`` = interpolator half-length on both sides, so that around the sample that sets the
   gain, the gain is flat over every sample its interpolated points are built from.
3. Release, linear in dB: ``q[n] = min(s[n], q[n-1] * 10**(rate/20))``, evaluated in closed
   form as a running minimum (``np.minimum.accumulate``).
4. Attack: ``g[n] = mean(q[n - L + 1 .. n])``. Each averaged value ``q[i] <= s[i] <= r[n]``
   (``n`` lies in ``i``'s lookahead window), so ``g[n] <= r[n]``: no sample gets more gain
   than it needs, and the gain moves smoothly (piecewise linear) into every peak.

A time-varying gain changes the interpolated signal slightly, so the gain computer aims a
little under the ceiling, and a second, identical gain computer (a smaller margin, reductions
of a few hundredths of a dB at most) runs on the first one's output to catch what is left.
The true peak of the output, measured with ``TruePeakMeter``, stays at or below the ceiling.

Output ``n`` is ``g[n] * input[n]`` with no time shift: ``process`` returns only the samples
whose lookahead has arrived and ``flush`` returns the rest (silence assumed after the end).
"""

from __future__ import annotations

import math

import numpy as np

from castline.dsp.truepeak import HALF_TAPS, TruePeakEnvelope, as_channels_first
from castline.core.timebase import ms_to_samples

MAIN_MARGIN_DB = 0.1
"""The main gain computer aims this far under the ceiling (dB)."""
SAFETY_MARGIN_DB = 0.02
"""The safety gain computer aims this far under the ceiling (dB)."""
SAFETY_MIN_LOOKAHEAD_SAMPLES = 64
"""The safety stage's corrections are tiny; a ramp this long keeps its own error far below
its margin even when the main lookahead is very short."""
RELEASE_DB_PER_RELEASE_TIME = 3.0
"""``release_ms`` is the time the gain takes to recover by this many dB."""
_HOLD_SAMPLES = HALF_TAPS
_CHUNK_SAMPLES = 65_536


class TruePeakLimiter:
    """Lookahead true-peak limiter for ``channels`` channels at ``sample_rate`` Hz.

    ``ceiling_dbtp``: maximum output true peak (dBTP). ``lookahead_ms``: attack ramp length
    (ms). ``release_ms``: time for the gain to recover by 3 dB (linear-in-dB release). The gain
    is linked across channels. Blocks are float32/float64 ``(samples,)`` (mono) or
    ``(channels, samples)``; outputs are float32 in the same layout.
    """

    def __init__(self, sample_rate: int, channels: int, *, ceiling_dbtp: float,
                 lookahead_ms: float = 5.0, release_ms: float = 80.0) -> None:
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        if release_ms <= 0:
            raise ValueError(f"release_ms must be positive, got {release_ms}")
        lookahead = ms_to_samples(lookahead_ms, sample_rate)
        if lookahead < 1:
            raise ValueError(f"lookahead_ms={lookahead_ms} is under one sample at {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.channels = channels
        self.ceiling_dbtp = float(ceiling_dbtp)
        self.lookahead_samples = lookahead
        release_db_per_sample = RELEASE_DB_PER_RELEASE_TIME / (release_ms / 1000.0 * sample_rate)
        release_np_per_sample = release_db_per_sample * math.log(10.0) / 20.0
        self._main = _GainComputer(sample_rate, channels, ceiling_dbtp - MAIN_MARGIN_DB,
                                   lookahead, release_np_per_sample)
        self._safety = _GainComputer(sample_rate, channels, ceiling_dbtp - SAFETY_MARGIN_DB,
                                     max(lookahead, SAFETY_MIN_LOOKAHEAD_SAMPLES),
                                     release_np_per_sample)
        self._waiting_input = np.zeros((channels, 0), dtype=np.float32)
        self._waiting_main = np.zeros((channels, 0), dtype=np.float32)
        self._waiting_main_gain = np.zeros(0)
        self._min_gain = 1.0
        self._samples_limited = 0
        self._mono_output: bool | None = None
        self._flushed = False

    @property
    def delay_samples(self) -> int:
        """Samples held back by ``process`` until more input (or ``flush``) arrives."""
        return self._main.delay_samples + self._safety.delay_samples

    @property
    def gain_reduction_max_db(self) -> float:
        """Largest gain reduction applied so far (dB, >= 0)."""
        return -20.0 * math.log10(self._min_gain) if self._min_gain > 0.0 else math.inf

    @property
    def samples_limited(self) -> int:
        """How many output samples (per channel, gain is linked) had a gain below 1."""
        return self._samples_limited

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block; returns the output samples that are ready (possibly none)."""
        if self._flushed:
            raise RuntimeError("process() after flush()")
        block = np.asarray(block)
        if self._mono_output is None:
            self._mono_output = block.ndim == 1
        data = as_channels_first(block, self.channels, dtype=block.dtype)
        outputs = [np.zeros((self.channels, 0), dtype=np.float32)]
        for start in range(0, data.shape[1], _CHUNK_SAMPLES):
            chunk = data[:, start:start + _CHUNK_SAMPLES].astype(np.float32, copy=False)
            self._waiting_input = np.concatenate([self._waiting_input, chunk], axis=1)
            outputs.append(self._emit(self._main.process(chunk), final=False))
        return self._shape(np.concatenate(outputs, axis=1))

    def flush(self) -> np.ndarray:
        """Returns the remaining output; the concatenated outputs match the input length."""
        if self._flushed:
            return self._shape(np.zeros((self.channels, 0), dtype=np.float32))
        self._flushed = True
        return self._shape(self._emit(self._main.flush(), final=True))

    def _emit(self, main_gain: np.ndarray, final: bool) -> np.ndarray:
        # Gains never exceed 1, and x * 1.0 == x exactly: where a whole stretch of gains is 1
        # (the usual case away from peaks) the multiplications are left out.
        count = main_gain.size
        main_unity = _all_unity(main_gain)
        main_out = self._waiting_input[:, :count]
        if not main_unity:
            main_out = main_out * main_gain.astype(np.float32)
        self._waiting_input = self._waiting_input[:, count:]
        self._waiting_main = np.concatenate([self._waiting_main, main_out], axis=1)
        self._waiting_main_gain = np.concatenate([self._waiting_main_gain, main_gain])
        skippable = np.ones(count, dtype=bool) if main_unity else main_gain == 1.0
        safety_gain = self._safety.process(main_out, skippable=skippable)
        if final:
            safety_gain = np.concatenate([safety_gain, self._safety.flush()])
        count = safety_gain.size
        out = self._waiting_main[:, :count]
        total_gain = self._waiting_main_gain[:count]
        if not _all_unity(safety_gain):
            out = out * safety_gain.astype(np.float32)
            total_gain = total_gain * safety_gain
        self._waiting_main = self._waiting_main[:, count:]
        self._waiting_main_gain = self._waiting_main_gain[count:]
        if count:
            lowest = float(total_gain.min())
            if lowest < 1.0:
                self._min_gain = min(self._min_gain, lowest)
                self._samples_limited += int(np.count_nonzero(total_gain < 1.0))
        return out

    def _shape(self, out: np.ndarray) -> np.ndarray:
        return out[0] if self._mono_output else out


class _GainComputer:
    """Per-sample gains that keep ``gain * signal`` under ``target_dbtp`` (true peak).

    Gains lag the input by ``delay_samples``; ``flush`` returns the rest.
    """

    def __init__(self, sample_rate: int, channels: int, target_dbtp: float, lookahead: int,
                 release_np_per_sample: float) -> None:
        self._envelope = TruePeakEnvelope(sample_rate, channels)
        self._target = np.float32(10.0 ** (target_dbtp / 20.0))
        self._lookahead = lookahead
        self._window = lookahead + 2 * _HOLD_SAMPLES
        self._release = release_np_per_sample
        # The attack average at sample 0 reaches back lookahead - 1 samples, so gains are also
        # computed for that many virtual (silent) samples before the start, then dropped.
        self._min_history = np.ones(_HOLD_SAMPLES + lookahead - 1, dtype=np.float32)
        self._release_state = 0.0
        self._average_history = np.zeros(lookahead - 1)
        self._virtual_left = lookahead - 1
        self._ramp_cache = np.zeros(0)
        self._ones = np.ones(0)

    @property
    def delay_samples(self) -> int:
        return self._envelope.delay_samples + _HOLD_SAMPLES + self._lookahead - 1

    def process(self, block: np.ndarray, skippable: np.ndarray | None = None) -> np.ndarray:
        """Gains for the samples now ready. ``skippable``: True where the caller knows the
        sample already needs no gain (see ``TruePeakEnvelope.process``). Envelope values that
        cannot exceed the target are not computed either: skipped or computed, their gain is
        exactly 1."""
        return self._gains(self._envelope.process(block, skippable, floor=float(self._target)), final=False)

    def flush(self) -> np.ndarray:
        return self._gains(self._envelope.flush(), final=True)

    def _gains(self, envelope: np.ndarray, final: bool) -> np.ndarray:
        quiet = envelope.size and float(envelope.max()) <= self._target
        history_quiet = self._min_history.size == self._window - 1 and self._min_history.min() == 1.0
        if quiet and history_quiet:
            # The general path below with every needed gain exactly 1 (target / target), short-cut.
            count = envelope.size + (self._lookahead - 1 + _HOLD_SAMPLES if final else 0)
            return self._attack_gains(self._release_curve(None, count), count)
        needed = np.maximum(envelope, self._target)
        np.divide(self._target, needed, out=needed)
        parts = [self._min_history, needed]
        if final:
            parts.append(np.ones(self._lookahead - 1 + _HOLD_SAMPLES, dtype=np.float32))
        extended = np.concatenate(parts)
        count = extended.size - self._window + 1
        if count <= 0:
            self._min_history = extended
            return np.zeros(0)
        self._min_history = extended[count:]
        if extended.min() == 1.0:
            held = None
        else:
            held = sliding_minimum(extended, self._window)
        return self._attack_gains(self._release_curve(held, count), count)

    def _attack_gains(self, reduction: np.ndarray | None, count: int) -> np.ndarray:
        gain = self._attack(reduction, count)
        if self._virtual_left:
            dropped = min(self._virtual_left, gain.size)
            self._virtual_left -= dropped
            gain = gain[dropped:]
        return gain

    def _release_curve(self, held: np.ndarray | None, count: int) -> np.ndarray | None:
        """Reductions ``1 - q`` (float32) after the linear-in-dB release; ``None`` when all zero."""
        if held is None and self._release_state == 0.0:
            return None
        if held is None:
            log_gain = np.zeros(count)
        else:
            log_gain = np.log(held).astype(np.float64)
        # q[i] = min(ln s[i], q[i-1] + rate) unrolled: rate*i + running min of (ln s[k] - rate*k)
        ramp = self._ramp(count)
        log_gain -= ramp
        np.minimum.accumulate(log_gain, out=log_gain)
        np.minimum(log_gain, self._release_state + self._release, out=log_gain)
        log_gain += ramp
        self._release_state = min(0.0, float(log_gain[-1]))
        reduction = np.exp(log_gain.astype(np.float32))
        np.subtract(np.float32(1.0), reduction, out=reduction)
        return reduction

    def _ramp(self, count: int) -> np.ndarray:
        if self._ramp_cache.size < count:
            self._ramp_cache = self._release * np.arange(max(count, 65_536), dtype=np.float64)
        return self._ramp_cache[:count]

    def _attack(self, reduction: np.ndarray | None, count: int) -> np.ndarray:
        """Moving average of the released gain over the lookahead (as reductions ``1 - q``)."""
        history = self._average_history
        if reduction is None and not history.any():
            if self._ones.size < count:
                self._ones = np.ones(max(count, 2 * _CHUNK_SAMPLES))
                self._ones.flags.writeable = False
            return self._ones[:count]
        window = self._lookahead
        sums = np.empty(window + count)
        sums[0] = 0.0
        sums[1:window] = history
        if reduction is None:
            sums[window:] = 0.0
        else:
            sums[window:] = reduction
        self._average_history = sums[count + 1:].copy()
        np.cumsum(sums, out=sums)
        gain = sums[window:] - sums[:count]
        gain *= -1.0 / window
        gain += 1.0
        np.clip(gain, 0.0, 1.0, out=gain)
        return gain


def _all_unity(gain: np.ndarray) -> bool:
    """Whether every gain is exactly 1 (gains never exceed 1)."""
    return gain.size == 0 or float(gain.min()) == 1.0


def sliding_minimum(values: np.ndarray, window: int) -> np.ndarray:
    """``out[i] = min(values[i:i + window])`` for every complete window (``len - window + 1`` of them).

    Minima of windows that double in length, then two overlapping windows per output: about
    2 * log2(window) passes over the block, exact (a minimum never rounds). Written here because
    scipy's ``minimum_filter1d`` needs ``scipy.ndimage``, whose import (~0.35 CPU-s) cost more
    than the limiter itself on a programme that is never limited.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    count = values.size - window + 1
    if count <= 0:
        return values[:0].copy()
    minima, span = values, 1
    while 2 * span <= window:
        minima = np.minimum(minima[:-span], minima[span:])
        span *= 2
    return np.minimum(minima[:count], minima[window - span:window - span + count])
