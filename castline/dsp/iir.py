"""IIR filtering in second-order sections, without importing ``scipy.signal``.

The recursion is scipy's own compiled loop (the extension module ``scipy.signal._sosfilt``), so
every output is bit-identical to ``scipy.signal.sosfilt``. Importing it the usual way runs
``scipy.signal``'s package import, which imports ``scipy.stats`` and costs about 0.85 CPU-s: a
sixth of mastering a 30-minute programme, and a sixth of a cached render's start-up. The loop is
loaded on its own (``castline.core.scipy_extensions``), once, when this module is imported, and
checked on four samples against the recursion written out. Where this scipy does not lay it out
that way, or the check fails, ``scipy.signal.sosfilt`` runs instead (same results).

The two designs castline needs are written out here for the same reason: a Butterworth
high-pass (bilinear transform with pre-warping, as ``scipy.signal.butter`` does it) and the
steady state of a cascade for a constant input (as ``scipy.signal.sosfilt_zi``).

Layout: ``sos`` is scipy's, shape ``(sections, 6)`` of ``b0 b1 b2 a0 a1 a2`` with ``a0 == 1``;
a filter state is ``(sections, 2)`` (transposed direct form II), float64.
"""

from __future__ import annotations

import cmath
import math
from typing import Callable

import numpy as np

from castline.core.scipy_extensions import signal_extension


def _load_kernel() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None:
    """scipy's in-place loop ``_sosfilt(sos, x, zi)``; None where it cannot be found."""
    module = signal_extension("_sosfilt")
    if module is None:
        return None
    kernel = getattr(module, "_sosfilt", None)
    return kernel if kernel is not None and _behaves(kernel) else None


def _behaves(kernel) -> bool:
    """Whether ``kernel`` is the in-place loop this module expects (a private function of scipy's
    could change between versions): one section on four samples, checked against the recursion
    written out (transposed direct form II)."""
    b0, b1, b2, a1, a2 = 0.5, 0.25, -0.125, -0.5, 0.25
    samples, z0, z1 = [1.0, -2.0, 0.5, 3.0], 0.125, -0.25
    expected = []
    for x in samples:
        y = b0 * x + z0
        z0, z1 = b1 * x - a1 * y + z1, b2 * x - a2 * y
        expected.append(y)
    signal = np.array([samples])
    state = np.array([[[0.125, -0.25]]])
    try:
        kernel(np.array([[b0, b1, b2, 1.0, a1, a2]]), signal, state)
    except Exception:
        return False
    return signal[0].tolist() == expected and state[0, 0].tolist() == [z0, z1]


_KERNEL = _load_kernel()


def filter_rows(sos: np.ndarray, signals: np.ndarray, states: np.ndarray) -> None:
    """Filter each row of ``signals`` through ``sos``, in place, carrying ``states`` in place.

    ``signals``: float64, shape ``(rows, samples)``, C-contiguous. ``states``: float64, shape
    ``(rows, sections, 2)``, C-contiguous: each row's filter state, updated to the state after
    its last sample. Same results as ``scipy.signal.sosfilt(sos, signals, axis=-1, zi=...)``.
    """
    if signals.dtype != np.float64 or not signals.flags.c_contiguous:
        raise ValueError("signals must be a C-contiguous float64 array")
    if states.dtype != np.float64 or not states.flags.c_contiguous:
        raise ValueError("states must be a C-contiguous float64 array")
    if states.shape != (signals.shape[0], sos.shape[0], 2):
        raise ValueError(f"states must have shape {(signals.shape[0], sos.shape[0], 2)}, got {states.shape}")
    if signals.shape[1] == 0:
        return
    coefficients = np.ascontiguousarray(sos, dtype=np.float64)
    for row in range(signals.shape[0]):
        signal, state = signals[row:row + 1], states[row:row + 1]
        runs = _zero_runs(signal[0])
        if runs:
            _run_past_silence(coefficients, signal, state, runs)
        else:
            _run(coefficients, signal, state)


ZERO_RUN_SAMPLES = 1024
"""Runs of exact zeros at least this long (samples) let a section's dying state be ended."""
NEGLIGIBLE_STATE = 1e-180
"""A state this small ends: set to zero (see ``_run_past_silence``)."""
_FIRST_PROBE_SAMPLES = 256


def _run(sos: np.ndarray, signal: np.ndarray, state: np.ndarray) -> None:
    """The loop itself: ``signal`` ``(1, samples)`` and ``state`` ``(1, sections, 2)``, in place."""
    if _KERNEL is not None:
        _KERNEL(sos, signal, state)
        return
    from scipy.signal import sosfilt

    signal[...], final = sosfilt(sos, signal, axis=-1, zi=np.moveaxis(state, 0, 1))
    state[...] = np.moveaxis(final, 1, 0)


def _run_past_silence(sos: np.ndarray, signal: np.ndarray, state: np.ndarray,
                      runs: list[tuple[int, int]]) -> None:
    """``_run``, ending each section's state once it has died away in a run of zeros.

    In digital silence a section's state decays towards zero and then, in gradual underflow,
    lingers among subnormal numbers, where every multiply is many times slower: K-weighting a
    programme's pauses measured up to 40x slower per sample than its speech. Inside a run of
    zeros, the cascade runs in growing stretches; after each, leading sections whose state has
    fallen below ``NEGLIGIBLE_STATE`` (1e-180) are set to exactly zero, which is then also their
    output, and the rest of the run goes through the sections after them only. What that changes
    is far below anything that reaches a reading: such a state would only ever produce outputs
    under ~1e-170, whose squares are zero in float64, and against audio they vanish in rounding.
    """
    position = 0
    for start, stop in runs:
        _run(sos, signal[:, position:start], state)
        _run_zeros(sos, signal, state, start, stop)
        position = stop
    _run(sos, signal[:, position:], state)


def _run_zeros(sos: np.ndarray, signal: np.ndarray, state: np.ndarray, start: int, stop: int) -> None:
    """Filter the zeros ``signal[:, start:stop]`` in place, ending states as they die away."""
    sections = sos.shape[0]
    live, probe, position = 0, _FIRST_PROBE_SAMPLES, start
    while position < stop:
        while live < sections and float(np.max(np.abs(state[:, live]))) < NEGLIGIBLE_STATE:
            state[:, live] = 0.0
            live += 1
        if live == sections:
            return  # every section at rest: the rest of the run stays zero
        end = min(stop, position + probe)
        # The input of section ``live`` is the output of ended sections: zeros, as here.
        _run(sos[live:], signal[:, position:end], state[:, live:])
        position, probe = end, 2 * probe


def _zero_runs(samples: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of exact zeros at least ``ZERO_RUN_SAMPLES`` long."""
    zero = samples == 0
    if np.count_nonzero(zero) < ZERO_RUN_SAMPLES:
        return []
    changes = np.flatnonzero(zero[1:] != zero[:-1]) + 1
    bounds = np.concatenate(([0], changes, [samples.size]))
    first_zero = 0 if zero[0] else 1  # runs alternate: zeros, non-zeros, zeros, ...
    starts, stops = bounds[first_zero:-1:2], bounds[first_zero + 1::2]
    long_enough = stops - starts >= ZERO_RUN_SAMPLES
    return list(zip(starts[long_enough].tolist(), stops[long_enough].tolist()))


def butterworth_highpass(order: int, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Digital Butterworth high-pass of ``order`` at ``cutoff_hz`` (Hz, -3 dB) for ``sample_rate``
    (Hz), as second-order sections (one first-order section for an odd order).

    The analogue prototype's poles, moved to ``cutoff_hz`` pre-warped through ``tan``, map through
    the bilinear transform; every zero lands at DC. Each section has unit gain at Nyquist, so the
    cascade does too. Matches ``scipy.signal.butter(order, cutoff_hz, 'highpass', fs=sample_rate,
    output='sos')`` in response to rounding (the gain is spread over sections, not put in one).
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    if not 0.0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff_hz must lie between 0 and {sample_rate / 2:g} Hz, got {cutoff_hz}")
    # Bilinear transform with scipy's convention (T = 1/fs): s = 2 fs (z - 1) / (z + 1).
    warped = 2.0 * sample_rate * math.tan(math.pi * cutoff_hz / sample_rate)
    sections = []
    for k in range(order // 2):
        prototype = -cmath.exp(1j * math.pi * (2 * k + 1 - order) / (2 * order))
        pole = _bilinear(warped / prototype, sample_rate)
        a = (1.0, -2.0 * pole.real, abs(pole) ** 2)
        gain = (a[0] - a[1] + a[2]) / 4.0
        sections.append((gain, -2.0 * gain, gain, *a))
    if order % 2:
        pole = _bilinear(-warped, sample_rate).real
        gain = (1.0 + pole) / 2.0
        sections.append((gain, -gain, 0.0, 1.0, -pole, 0.0))
    # Poles closest to the unit circle last, as scipy orders them.
    sections.sort(key=lambda row: row[5])
    return np.array(sections, dtype=np.float64)


def _bilinear(pole: complex, sample_rate: int) -> complex:
    doubled = 2.0 * sample_rate
    return (doubled + pole) / (doubled - pole)


def steady_state(sos: np.ndarray) -> np.ndarray:
    """The ``(sections, 2)`` state of the cascade after a constant input of 1 forever (scale it by
    the input level): as ``scipy.signal.sosfilt_zi``, solved in closed form per section."""
    states = np.zeros((sos.shape[0], 2))
    level = 1.0
    for index, (b0, b1, b2, a0, a1, a2) in enumerate(np.asarray(sos, dtype=np.float64)):
        if a0 != 1.0:
            raise ValueError("sections must be normalised (a0 == 1)")
        first = b1 - a1 * b0
        second = b2 - a2 * b0
        z0 = (first + second) / (1.0 + a1 + a2)
        states[index] = (level * z0, level * (second - a2 * z0))
        level *= (b0 + b1 + b2) / (1.0 + a1 + a2)
    return states
