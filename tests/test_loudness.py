"""Loudness meter: EBU Tech 3341/3342 cases, pyloudnorm cross-check, mono convention, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import sosfreqz

from castline.dsp.kweighting import highpass_biquad, k_weighting_sos, shelf_biquad
from castline.dsp.loudness import LoudnessMeter, LoudnessReading, measure_loudness
from ebu_files import read_ebu

DUAL_MONO_DB = 10 * math.log10(2)


def tone_sequence(levels_dbfs_seconds: list[tuple[float, float]], rate: int = 48_000,
                  channels: int = 2, freq_hz: float = 1000.0) -> np.ndarray:
    """Continuous-phase sine at a sequence of (peak level dBFS, seconds), same on all channels."""
    amplitudes = np.concatenate([
        np.full(int(round(seconds * rate)), 10 ** (level / 20)) for level, seconds in levels_dbfs_seconds
    ])
    n = np.arange(amplitudes.size)
    mono = (amplitudes * np.sin(2 * np.pi * freq_hz / rate * n)).astype(np.float32)
    return np.tile(mono, (channels, 1)) if channels > 1 else mono


def speech_like(rate: int, seconds: float, seed: int, channels: int = 1) -> np.ndarray:
    """Band-limited noise with syllable-rate envelope and pauses (exercises the gates)."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    count = int(seconds * rate)
    sos = butter(2, [150, min(6000, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    noise = sosfilt(sos, rng.standard_normal((channels, count)), axis=-1)
    syllable = rate // 6
    envelope = rng.uniform(0, 1, count // syllable + 1) ** 2
    envelope[rng.random(envelope.size) < 0.25] = 0.003  # pauses, some below the relative gate
    envelope = np.repeat(envelope, syllable)[:count]
    level = np.repeat(10 ** (rng.uniform(-12, 0, count // (3 * rate) + 1) / 20), 3 * rate)[:count]
    out = (0.3 * noise * envelope * level).astype(np.float32)
    return out[0] if channels == 1 else out


def stream(signal: np.ndarray, rate: int, block: int | None, **kwargs) -> LoudnessMeter:
    channels = 1 if signal.ndim == 1 else signal.shape[0]
    meter = LoudnessMeter(rate, channels, **kwargs)
    size = signal.shape[-1] if block is None else block
    for start in range(0, signal.shape[-1], size):
        meter.process(signal[..., start:start + size])
    return meter


# --- K-weighting -------------------------------------------------------------------------------

def test_k_weighting_matches_bs1770_table_at_48k() -> None:
    b, a = shelf_biquad(48_000)
    np.testing.assert_allclose(b, [1.53512485958697, -2.69169618940638, 1.19839281085285],
                               atol=1e-8)
    np.testing.assert_allclose(a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    b, a = highpass_biquad(48_000)
    np.testing.assert_allclose(b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-8)


# Bilinear-transform warping bends the shelf's transition a little away from 48 kHz (as in any
# BS.1770 design pre-warped at the shelf frequency).
@pytest.mark.parametrize("rate, tolerance_db", [
    (16_000, 0.2), (22_050, 0.1), (24_000, 0.1), (44_100, 0.01), (96_000, 0.05),
])
def test_k_weighting_response_matches_48k_at_other_rates(rate: int, tolerance_db: float) -> None:
    freqs = np.geomspace(20, 0.3 * rate, 200)
    _, reference = sosfreqz(k_weighting_sos(48_000), worN=freqs, fs=48_000)
    _, response = sosfreqz(k_weighting_sos(rate), worN=freqs, fs=rate)
    difference_db = 20 * np.log10(np.abs(response) / np.abs(reference))
    assert np.abs(difference_db).max() < tolerance_db


@pytest.mark.parametrize("rate", [16_000, 22_050, 24_000, 44_100, 48_000])
def test_1khz_tone_reads_its_level_at_every_rate(rate: int) -> None:
    signal = tone_sequence([(-23.0, 5.0)], rate=rate)
    reading = measure_loudness(signal, rate)
    assert reading.integrated_lufs == pytest.approx(-23.0, abs=0.05)


# --- EBU Tech 3341 -----------------------------------------------------------------------------

@pytest.mark.parametrize("number, expected", [(1, -23.0), (2, -33.0)])
def test_ebu_tech3341_files_1_and_2(number: int, expected: float) -> None:
    signal, rate = read_ebu(number)
    reading = measure_loudness(signal, rate)
    assert reading.integrated_lufs == pytest.approx(expected, abs=0.1)
    assert reading.max_momentary_lufs == pytest.approx(expected, abs=0.1)
    assert reading.max_short_term_lufs == pytest.approx(expected, abs=0.1)


def test_ebu_tech3341_file_12_momentary_is_constant_after_one_second() -> None:
    signal, rate = read_ebu(12)
    meter = stream(signal, rate, 48_000)
    reading = meter.result()
    assert reading.max_momentary_lufs == pytest.approx(-23.0, abs=0.1)
    momentary = meter.momentary_series()
    after_one_second = momentary[6:]  # windows starting at >= 0.6 s end at >= 1.0 s
    assert np.all(np.abs(after_one_second + 23.0) <= 0.1)


@pytest.mark.parametrize("case, sequence", [
    (3, [(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)]),
    (4, [(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)]),
    (5, [(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)]),
])
def test_ebu_tech3341_synthesised_cases(case: int, sequence: list[tuple[float, float]]) -> None:
    signal = tone_sequence(sequence)
    reading = stream(signal, 48_000, 65_536, true_peak=False).result()
    assert reading.integrated_lufs == pytest.approx(-23.0, abs=0.1), case


# --- EBU Tech 3342 (loudness range) ------------------------------------------------------------

@pytest.mark.parametrize("sequence, expected_lu", [
    ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),
    ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),
    ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),
    ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),
])
def test_ebu_tech3342_loudness_range(sequence: list[tuple[float, float]],
                                     expected_lu: float) -> None:
    signal = tone_sequence(sequence)
    reading = stream(signal, 48_000, 65_536, true_peak=False).result()
    assert reading.loudness_range_lu == pytest.approx(expected_lu, abs=1.0)


# --- cross-check against pyloudnorm ------------------------------------------------------------

@pytest.mark.parametrize("rate", [24_000, 44_100])
@pytest.mark.parametrize("channels", [1, 2])
def test_integrated_matches_pyloudnorm(rate: int, channels: int) -> None:
    pyln = pytest.importorskip("pyloudnorm")
    signal = speech_like(rate, 25.0, seed=rate + channels, channels=channels)
    ours = measure_loudness(signal, rate, mono_as_dual_mono=False).integrated_lufs
    theirs = pyln.Meter(rate, filter_class="DeMan").integrated_loudness(
        signal.T.astype(np.float64))
    assert ours == pytest.approx(theirs, abs=0.05)


# --- mono convention ---------------------------------------------------------------------------

def test_mono_as_dual_mono_is_exactly_3_01_db_louder_and_equals_stereo() -> None:
    rate = 24_000
    mono = tone_sequence([(-20.0, 6.0)], rate=rate, channels=1)
    dual = measure_loudness(mono, rate, mono_as_dual_mono=True)
    single = measure_loudness(mono, rate, mono_as_dual_mono=False)
    stereo = measure_loudness(np.stack([mono, mono]), rate)
    assert dual.integrated_lufs - single.integrated_lufs == pytest.approx(DUAL_MONO_DB, abs=1e-9)
    assert dual.max_momentary_lufs - single.max_momentary_lufs == pytest.approx(DUAL_MONO_DB, abs=1e-9)
    assert dual.integrated_lufs == pytest.approx(stereo.integrated_lufs, abs=1e-9)
    assert dual.max_short_term_lufs == pytest.approx(stereo.max_short_term_lufs, abs=1e-9)
    assert dual.loudness_range_lu == pytest.approx(stereo.loudness_range_lu, abs=1e-9)
    # peaks and RMS do not depend on the convention
    assert dual.rms_dbfs == single.rms_dbfs == pytest.approx(stereo.rms_dbfs, abs=1e-9)
    assert dual.sample_peak_dbfs == single.sample_peak_dbfs


def test_mono_minus_19_as_one_channel_reads_minus_16() -> None:
    rate = 24_000
    # one channel of a 1 kHz sine reads its peak level - 3.01 dB
    mono = tone_sequence([(-19.0 + DUAL_MONO_DB, 5.0)], rate=rate, channels=1)
    assert measure_loudness(mono, rate, mono_as_dual_mono=False).integrated_lufs == \
        pytest.approx(-19.0, abs=0.05)
    assert measure_loudness(mono, rate).integrated_lufs == pytest.approx(-16.0, abs=0.05)


def test_surround_channels_weigh_1_41() -> None:
    rate = 24_000
    tone = tone_sequence([(-20.0, 3.0)], rate=rate, channels=1)
    front = np.zeros((5, tone.size), dtype=np.float32)
    front[0] = tone
    surround = np.zeros_like(front)
    surround[3] = tone
    difference = (measure_loudness(surround, rate).integrated_lufs
                  - measure_loudness(front, rate).integrated_lufs)
    assert difference == pytest.approx(10 * math.log10(1.41), abs=1e-9)


# --- other readings ----------------------------------------------------------------------------

def test_rms_peak_and_duration() -> None:
    rate = 24_000
    signal = tone_sequence([(-6.0, 1.0)], rate=rate, channels=2)[:, :12_345].copy()
    signal[1] *= 0.5
    reading = measure_loudness(signal, rate)
    mean_square = np.mean(signal.astype(np.float64) ** 2)
    assert reading.rms_dbfs == pytest.approx(10 * math.log10(mean_square), abs=1e-9)
    assert reading.sample_peak_dbfs == pytest.approx(
        20 * math.log10(float(np.abs(signal).max())), abs=1e-9)
    assert reading.duration_samples == 12_345
    assert reading.sample_rate == rate and reading.channels == 2
    assert reading.true_peak_dbtp is not None
    assert reading.true_peak_dbtp >= reading.sample_peak_dbfs - 1e-6
    full_scale_sine = tone_sequence([(0.0, 1.0)], rate=rate, channels=1)
    assert measure_loudness(full_scale_sine, rate).rms_dbfs == pytest.approx(-3.01, abs=0.01)


def test_silence_and_too_short_read_minus_infinity() -> None:
    rate = 24_000
    silent = measure_loudness(np.zeros((2, 5 * rate), dtype=np.float32), rate)
    assert silent.integrated_lufs == -math.inf
    assert silent.max_momentary_lufs == -math.inf
    assert silent.max_short_term_lufs == -math.inf
    assert silent.loudness_range_lu == 0.0
    assert silent.sample_peak_dbfs == -math.inf
    assert silent.rms_dbfs == -math.inf
    assert silent.true_peak_dbtp == -math.inf
    short = measure_loudness(tone_sequence([(-20.0, 0.3)], rate=rate), rate)
    assert short.integrated_lufs == -math.inf
    assert short.max_momentary_lufs == -math.inf
    assert short.sample_peak_dbfs == pytest.approx(-20.0, abs=0.01)
    assert short.duration_samples == int(0.3 * rate)
    below_gate = measure_loudness(tone_sequence([(-75.0, 2.0)], rate=rate), rate)
    assert below_gate.integrated_lufs == -math.inf
    empty = LoudnessMeter(rate, 1).result()
    assert empty.integrated_lufs == -math.inf and empty.duration_samples == 0
    assert empty.rms_dbfs == -math.inf


def test_short_term_series_every_100_ms() -> None:
    rate = 24_000
    meter = stream(tone_sequence([(-20.0, 10.0)], rate=rate), rate, 4096)
    series = meter.short_term_series()
    assert series.shape == (100 - 29,)
    assert np.all(np.abs(series - series[-1]) < 1e-4)  # the first window holds the filter onset
    assert meter.result().max_short_term_lufs == pytest.approx(float(series.max()))
    assert stream(tone_sequence([(-20.0, 2.9)], rate=rate), rate, None).short_term_series().size == 0


def test_result_can_be_read_at_any_time() -> None:
    rate = 24_000
    signal = speech_like(rate, 12.0, seed=5)
    meter = LoudnessMeter(rate, 1)
    for stop in (30_000, 100_000, 200_000, signal.size):
        meter.process(signal[meter.result().duration_samples:stop])
        assert meter.result() == measure_loudness(signal[:stop], rate)
    assert meter.result() == meter.result()


@pytest.mark.parametrize("rate", [24_000, 44_100, 11_025])
@pytest.mark.parametrize("block", [97, 1000, 4410, 65536, None])
def test_meter_is_block_size_invariant(rate: int, block: int | None) -> None:
    signal = speech_like(rate, 8.0, seed=9, channels=2)
    reference = stream(signal, rate, None)
    meter = stream(signal, rate, block)
    assert meter.result() == reference.result()
    np.testing.assert_array_equal(meter.short_term_series(), reference.short_term_series())
    np.testing.assert_array_equal(meter.momentary_series(), reference.momentary_series())


def test_float64_input_and_mono_as_2d() -> None:
    rate = 24_000
    signal = speech_like(rate, 3.0, seed=2)
    as_float64 = measure_loudness(signal.astype(np.float64), rate)
    as_float32 = measure_loudness(signal, rate)
    assert as_float64.integrated_lufs == pytest.approx(as_float32.integrated_lufs, abs=1e-9)
    meter = LoudnessMeter(rate, 1)
    meter.process(signal[np.newaxis, :])
    assert meter.result() == as_float32


def test_input_validation() -> None:
    meter = LoudnessMeter(24_000, 2)
    with pytest.raises(ValueError):
        meter.process(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError):
        meter.process(np.zeros((1, 100), dtype=np.float32))
    with pytest.raises(TypeError):
        meter.process(np.zeros((2, 100), dtype=np.int16))
    with pytest.raises(ValueError):
        LoudnessMeter(24_000, 0)


def test_reading_is_frozen() -> None:
    reading = measure_loudness(np.zeros(24_000, dtype=np.float32), 24_000)
    assert isinstance(reading, LoudnessReading)
    with pytest.raises(Exception):
        reading.integrated_lufs = 0.0  # type: ignore[misc]
