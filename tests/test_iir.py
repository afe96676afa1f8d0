"""IIR filtering without scipy.signal: the same outputs as scipy's, and none of its import cost."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import minimum_filter1d
from scipy.signal import butter, sosfilt, sosfilt_zi, sosfreqz

from castline.dsp import iir
from castline.dsp.kweighting import k_weighting_sos
from castline.dsp.limiter import sliding_minimum


def sos_filter(sos: np.ndarray, samples: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.sosfilt(sos, samples, zi=state)`` for 1-D ``samples``, through ``iir.filter_rows``."""
    signals = np.array(samples, dtype=np.float64, ndmin=2)
    states = np.array(state, dtype=np.float64)[np.newaxis]
    iir.filter_rows(sos, signals, states)
    return signals[0], states[0]


def test_filtering_is_bit_identical_to_scipy_sosfilt_with_state_carried_across_blocks():
    rng = np.random.default_rng(7)
    sos = np.vstack([k_weighting_sos(24_000), butter(3, [120, 5000], "bandpass", fs=24_000, output="sos")])
    signal = rng.standard_normal(50_000).astype(np.float32)
    expected, expected_state = sosfilt(sos, signal, zi=np.zeros((sos.shape[0], 2)))

    state = np.zeros((sos.shape[0], 2))
    parts = []
    for start in range(0, signal.size, 7_919):
        part, state = sos_filter(sos, signal[start:start + 7_919], state)
        parts.append(part)
    assert np.array_equal(np.concatenate(parts), expected)
    assert np.array_equal(state, expected_state)


def test_rows_are_filtered_in_place_each_with_its_own_state():
    rng = np.random.default_rng(3)
    sos = k_weighting_sos(48_000)
    signals = rng.standard_normal((3, 4_000))
    states = rng.standard_normal((3, sos.shape[0], 2))
    expected = [sosfilt(sos, signals[row], zi=states[row]) for row in range(3)]
    iir.filter_rows(sos, signals, states)
    for row, (output, final) in enumerate(expected):
        assert np.array_equal(signals[row], output)
        assert np.array_equal(states[row], final)


def test_filter_rows_refuses_what_the_loop_cannot_take():
    sos = k_weighting_sos(48_000)
    with pytest.raises(ValueError, match="float64"):
        iir.filter_rows(sos, np.zeros((1, 10), np.float32), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        iir.filter_rows(sos, np.zeros((2, 10)), np.zeros((1, 2, 2)))


def test_the_fallback_through_scipy_signal_gives_the_same_samples(monkeypatch):
    rng = np.random.default_rng(11)
    sos = k_weighting_sos(24_000)
    signals = rng.standard_normal((2, 3_000))
    states = rng.standard_normal((2, 2, 2))
    with_kernel = signals.copy(), states.copy()
    iir.filter_rows(sos, *with_kernel)
    monkeypatch.setattr(iir, "_KERNEL", None)
    iir.filter_rows(sos, signals, states)
    assert np.array_equal(signals, with_kernel[0]) and np.array_equal(states, with_kernel[1])


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(("cutoff_hz", "sample_rate"), [(40.0, 24_000), (40.0, 48_000), (1_000.0, 16_000)])
def test_butterworth_highpass_has_scipys_response(order, cutoff_hz, sample_rate):
    ours = iir.butterworth_highpass(order, cutoff_hz, sample_rate)
    theirs = butter(order, cutoff_hz, "highpass", fs=sample_rate, output="sos")
    assert ours.shape == theirs.shape
    _, response = sosfreqz(ours, 4_096, fs=sample_rate)
    _, expected = sosfreqz(theirs, 4_096, fs=sample_rate)
    np.testing.assert_allclose(np.abs(response), np.abs(expected), rtol=0, atol=1e-9)
    np.testing.assert_allclose(abs(response[[0, -1]]), [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(ours[:, 3:], theirs[:, 3:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_steady_state_matches_scipy_and_leaves_a_constant_untouched(order):
    sos = iir.butterworth_highpass(order, 40.0, 24_000)
    np.testing.assert_allclose(iir.steady_state(sos), sosfilt_zi(sos), rtol=0, atol=1e-9)
    settled, _ = sos_filter(sos, np.full(2_000, 0.25), 0.25 * iir.steady_state(sos))
    assert np.max(np.abs(settled)) < 1e-12


def test_designs_refuse_impossible_filters():
    with pytest.raises(ValueError, match="order"):
        iir.butterworth_highpass(0, 40.0, 24_000)
    with pytest.raises(ValueError, match="cutoff_hz"):
        iir.butterworth_highpass(2, 13_000.0, 24_000)


@pytest.mark.parametrize("window", [1, 2, 3, 7, 64, 127, 128, 129, 301])
def test_sliding_minimum_equals_scipys_minimum_filter(window):
    values = np.random.default_rng(window).random(5_000).astype(np.float32)
    expected = minimum_filter1d(values, window, origin=-(window // 2))[:values.size - window + 1]
    got = sliding_minimum(values, window)
    assert got.dtype == values.dtype
    assert np.array_equal(got, expected)
    assert sliding_minimum(values[:window - 1], window).size == 0


def test_mastering_imports_neither_scipy_signal_nor_scipy_ndimage():
    probe = ("import sys, numpy as np\n"
             "from castline.dsp.loudness import LoudnessMeter\n"
             "from castline.dsp.edges import remove_dc\n"
             "from castline.dsp.limiter import TruePeakLimiter\n"
             "import castline.delivery.master, castline.render.stitch, castline.audio.encode\n"
             "tone = np.sin(np.arange(48_000) * 0.05).astype(np.float32) + 0.1\n"
             "meter = LoudnessMeter(24_000, 1); meter.process(remove_dc(tone, 24_000))\n"
             "limiter = TruePeakLimiter(24_000, 1, ceiling_dbtp=-6.0); limiter.process(tone); limiter.flush()\n"
             "print(meter.result().integrated_lufs, sorted(m for m in sys.modules\n"
             "      if m in ('scipy.signal', 'scipy.ndimage', 'scipy.stats')))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    reading, loaded = done.stdout.strip().split(" ", 1)
    assert float(reading) > -20.0
    assert loaded == "[]"


def test_silences_are_filtered_to_scipys_samples_without_lingering_in_subnormal_numbers():
    rng = np.random.default_rng(5)
    sos = k_weighting_sos(24_000)
    speech = [rng.standard_normal(n) * 0.1 for n in (30_000, 20_000, 40_000)]
    silence = [np.zeros(n) for n in (40_000, 3_000, 13_200)]
    programme = np.concatenate([part for pair in zip(silence, speech) for part in pair])
    expected, expected_state = sosfilt(sos, programme, zi=np.zeros((2, 2)))

    signals, states = programme[np.newaxis].copy(), np.zeros((1, 2, 2))
    runs = iir._zero_runs(programme)
    assert runs == [(0, 40_000), (70_000, 73_000), (93_000, 106_200)]
    ended = []
    monkey_run = iir._run_zeros

    def watching(sos_, signal, state, start, stop):
        monkey_run(sos_, signal, state, start, stop)
        ended.append((start, not state[0, 0].any()))

    iir._run_zeros = watching
    try:
        iir.filter_rows(sos, signals, states)
    finally:
        iir._run_zeros = monkey_run
    assert np.array_equal(signals[0], expected)
    assert np.array_equal(states[0], expected_state)
    # The shelf section died away in each pause and was ended there, not run on in subnormals.
    assert ended == [(0, True), (70_000, True), (93_000, True)]


def test_scipy_signal_imported_afterwards_uses_the_same_loop():
    probe = ("import sys, numpy as np\n"
             "from castline.dsp import iir\n"
             "loaded = sys.modules['scipy.signal._sosfilt']\n"
             "import scipy.signal\n"
             "from scipy.signal import sosfilt\n"
             "sos = scipy.signal.butter(2, 100, 'highpass', fs=8000, output='sos')\n"
             "x = np.random.default_rng(0).standard_normal(1000)\n"
             "ours = x[np.newaxis].copy(); iir.filter_rows(sos, ours, np.zeros((1, 1, 2)))\n"
             "print(sys.modules['scipy.signal._sosfilt'] is loaded, np.array_equal(ours[0], sosfilt(sos, x)))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_a_loop_that_does_not_behave_as_expected_is_not_used():
    assert iir._KERNEL is not None and iir._behaves(iir._KERNEL)
    assert not iir._behaves(lambda sos, signal, state: None)

    def other_signature(signal, sos, state):
        raise TypeError("signature changed")

    assert not iir._behaves(other_signature)
