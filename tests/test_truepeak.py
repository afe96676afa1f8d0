"""True-peak meter and envelope: EBU Tech 3341 files 15-23, accuracy, alignment, streaming."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from castline.dsp.truepeak import (
    HALF_TAPS,
    TruePeakEnvelope,
    TruePeakMeter,
    design_true_peak_filter,
    measure_true_peak_dbtp,
    oversampling_for,
)
from ebu_files import read_ebu

EBU_TRUE_PEAK_DBTP = {
    15: -6.0, 16: -6.0, 17: -6.0, 18: -6.0, 19: 3.0, 20: 0.0, 21: 0.0, 22: 0.0, 23: 0.0,
}


def faded_sine(freq_hz: float, rate: int, seconds: float, amplitude: float,
               phase: float = 0.0) -> np.ndarray:
    n = np.arange(int(seconds * rate))
    fade = np.minimum(1.0, np.minimum(n, n.size - n) / (0.05 * rate))
    return (amplitude * fade * np.sin(2 * np.pi * freq_hz / rate * n + phase)).astype(np.float32)


def stream_envelope(signal: np.ndarray, rate: int, block: int | None) -> np.ndarray:
    channels = 1 if signal.ndim == 1 else signal.shape[0]
    env = TruePeakEnvelope(rate, channels)
    size = signal.shape[-1] if block is None else block
    parts = [env.process(signal[..., s:s + size]) for s in range(0, signal.shape[-1], size)]
    parts.append(env.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize("number", sorted(EBU_TRUE_PEAK_DBTP))
def test_ebu_tech3341_true_peak_files(number: int) -> None:
    signal, rate = read_ebu(number)
    reading = measure_true_peak_dbtp(signal, rate)
    expected = EBU_TRUE_PEAK_DBTP[number]
    assert expected - 0.4 <= reading <= expected + 0.2, (number, reading)
    assert abs(reading - expected) <= 0.15, (number, reading)


@pytest.mark.parametrize("rate", [24_000, 48_000])
def test_sine_true_peak_error_is_only_the_oversampling_grid(rate: int) -> None:
    for fraction in np.linspace(0.005, 0.40, 24):
        # 4x points can miss a sine's crest by 1/8 sample at worst
        grid_loss_db = 20 * math.log10(math.cos(math.pi * fraction / 4))
        for phase in (0.0, 0.4, 1.1):
            signal = faded_sine(fraction * rate, rate, 0.25, 0.5, phase)
            error = measure_true_peak_dbtp(signal, rate) - 20 * math.log10(0.5)
            assert grid_loss_db - 0.03 <= error <= 0.03, (fraction, phase, error)


def test_inter_sample_peak_is_found_between_samples() -> None:
    rate = 24_000
    signal = faded_sine(rate / 4, rate, 0.5, 1.0, phase=math.pi / 4)
    sample_peak_db = 20 * math.log10(float(np.abs(signal).max()))
    assert sample_peak_db == pytest.approx(-3.01, abs=0.02)
    assert measure_true_peak_dbtp(signal, rate) == pytest.approx(0.0, abs=0.05)


def test_two_times_oversampling_from_96_khz() -> None:
    assert oversampling_for(48_000) == 4
    assert oversampling_for(88_200) == 4
    assert oversampling_for(96_000) == 2
    assert design_true_peak_filter(192_000).oversampling == 2
    rate = 96_000
    signal = faded_sine(rate / 4, rate, 0.2, 1.0, phase=math.pi / 4)
    assert measure_true_peak_dbtp(signal, rate) == pytest.approx(0.0, abs=0.05)


def test_silence_and_empty_read_minus_infinity() -> None:
    meter = TruePeakMeter(24_000, 2)
    assert meter.true_peak_dbtp == -math.inf
    meter.process(np.zeros((2, 5000), dtype=np.float32))
    assert meter.true_peak_dbtp == -math.inf


def test_envelope_matches_direct_polyphase_interpolation() -> None:
    rate = 24_000
    rng = np.random.default_rng(3)
    signal = rng.standard_normal(3000).astype(np.float32)
    factor = oversampling_for(rate)
    # Direct evaluation: zero-stuff, convolve with the centred prototype, take |.|.
    half_span = factor * HALF_TAPS
    t = np.arange(-half_span, half_span + 1)
    prototype = np.sinc(t / factor) * np.kaiser(t.size, 5.5)
    stuffed = np.zeros(signal.size * factor)
    stuffed[::factor] = signal
    upsampled = np.convolve(stuffed, prototype)[half_span:half_span + stuffed.size]
    for p in range(1, factor):  # same per-phase DC normalisation as the meter
        offsets = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)
        upsampled[p::factor] /= prototype[factor * offsets - p + half_span].sum()
    expected = np.abs(upsampled).reshape(-1, factor).max(axis=1)
    env = stream_envelope(signal, rate, None)
    np.testing.assert_allclose(env, expected, rtol=2e-5, atol=2e-5)


def test_envelope_is_aligned_with_the_input() -> None:
    rate = 24_000
    signal = np.zeros(1000, dtype=np.float32)
    signal[400] = -0.8
    env = stream_envelope(signal, rate, 64)
    assert env.size == signal.size
    assert int(np.argmax(env)) == 400
    assert env[400] == pytest.approx(0.8, abs=1e-6)
    # the points between 399 and 400 lead into the impulse; those after 400 fall away
    assert env[399] > 0.5
    assert env[401] < 0.3
    assert np.all(env[:400 - HALF_TAPS] == 0) and np.all(env[401 + HALF_TAPS:] == 0)


def test_envelope_includes_points_after_the_last_sample() -> None:
    rate = 24_000
    signal = faded_sine(rate / 4, rate, 0.1, 1.0, phase=math.pi / 4)
    signal[-1] = 0.9  # abrupt ending: the ringing into the trailing silence counts
    env = stream_envelope(signal, rate, 333)
    assert env.size == signal.size
    meter = TruePeakMeter(rate, 1)
    meter.process(signal)
    assert meter.true_peak_linear == pytest.approx(float(env.max()), rel=1e-7)


@pytest.mark.parametrize("block", [1, 7, 1000, 4410, 65536, None])
def test_true_peak_is_block_size_invariant(block: int | None) -> None:
    rate = 24_000
    rng = np.random.default_rng(11)
    count = 6000 if block == 1 else 100_000
    signal = (rng.standard_normal((2, count)) * 0.3).astype(np.float32)
    signal[1, 5000] = 1.7
    reference = stream_envelope(signal, rate, None)
    env = stream_envelope(signal, rate, block)
    # bit-exact: every envelope value is the same float32 operations in the same order
    np.testing.assert_array_equal(env, reference[:env.size])
    meter = TruePeakMeter(rate, 2)
    size = count if block is None else block
    for start in range(0, count, size):
        meter.process(signal[:, start:start + size])
    assert meter.true_peak_dbtp == measure_true_peak_dbtp(signal, rate)


_BLOCK_CHECK = """
import numpy as np
from castline.dsp.truepeak import TruePeakEnvelope
rng = np.random.default_rng(11)
signal = (rng.standard_normal((2, 100_000)) * 0.3).astype(np.float32)
def stream(size):
    env = TruePeakEnvelope(24_000, 2)
    parts = [env.process(signal[:, s:s + size]) for s in range(0, signal.shape[1], size)]
    return np.concatenate(parts + [env.flush()])
whole = stream(signal.shape[1])
print(sum(int(np.count_nonzero(stream(size) != whole)) for size in (1000, 4410)))
"""


@pytest.mark.parametrize("coretype", ["Haswell", "Zen"])
def test_block_size_invariance_does_not_depend_on_the_blas_kernel(coretype: str) -> None:
    # The kernels OpenBLAS picks on AVX2-only CPUs (many AMD EPYC) sum a matrix product in
    # an order that depends on its width; the envelope must not go through them.
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    done = subprocess.run([sys.executable, "-c", _BLOCK_CHECK], env=env, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "0"


def test_reading_mid_stream_reads_the_prefix_and_does_not_disturb_the_stream() -> None:
    rate = 24_000
    signal = faded_sine(3000.0, rate, 0.5, 0.7, phase=0.3)
    meter = TruePeakMeter(rate, 1)
    for start in range(0, signal.size, 1500):
        meter.process(signal[start:start + 1500])
        prefix = signal[:start + 1500]
        assert meter.true_peak_dbtp == pytest.approx(measure_true_peak_dbtp(prefix, rate), abs=1e-9)
    assert meter.true_peak_dbtp == pytest.approx(measure_true_peak_dbtp(signal, rate), abs=1e-9)


def test_input_validation() -> None:
    meter = TruePeakMeter(24_000, 2)
    with pytest.raises(ValueError):
        meter.process(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError):
        meter.process(np.zeros((3, 100), dtype=np.float32))
    with pytest.raises(TypeError):
        meter.process(np.zeros((2, 100), dtype=np.int16))
