"""True-peak limiter: the ceiling holds, alignment is exact, quiet audio is untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castline.dsp.limiter import TruePeakLimiter
from castline.dsp.truepeak import TruePeakMeter
from ebu_files import ebu_dir

RATE = 24_000


def limit(signal: np.ndarray, ceiling_dbtp: float, block: int | None, rate: int = RATE,
          **kwargs) -> tuple[np.ndarray, TruePeakLimiter]:
    channels = 1 if signal.ndim == 1 else signal.shape[0]
    limiter = TruePeakLimiter(rate, channels, ceiling_dbtp=ceiling_dbtp, **kwargs)
    size = signal.shape[-1] if block is None else block
    parts = [limiter.process(signal[..., s:s + size]) for s in range(0, signal.shape[-1], size)]
    parts.append(limiter.flush())
    return np.concatenate(parts, axis=-1), limiter


def true_peak_dbtp(signal: np.ndarray, rate: int = RATE) -> float:
    meter = TruePeakMeter(rate, 1 if signal.ndim == 1 else signal.shape[0])
    meter.process(signal)
    return meter.true_peak_dbtp


def steps(rng: np.random.Generator, count: int, low_db: float, high_db: float,
          step: int) -> np.ndarray:
    levels = 10 ** (rng.uniform(low_db, high_db, count // step + 1) / 20)
    return np.repeat(levels, step)[:count]


def make_signal(kind: str, seed: int, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    count = int(seconds * RATE)
    n = np.arange(count)
    if kind == "loud_noise":
        x = rng.standard_normal(count) * steps(rng, count, -20, 12, 1200)
    elif kind == "hf_noise":
        x = np.diff(rng.standard_normal(count + 1)) * steps(rng, count, -15, 15, 700)
    elif kind == "sine_bursts":
        x = np.zeros(count)
        for _ in range(12):
            start = int(rng.integers(0, count - 100))
            length = int(rng.integers(20, 6000))
            freq = rng.choice([rng.uniform(20, 0.45 * RATE), RATE / 4, RATE / 3, RATE / 6])
            seg = np.arange(min(length, count - start))
            x[start:start + seg.size] += 10 ** (rng.uniform(-6, 12) / 20) * np.sin(
                2 * np.pi * freq / RATE * seg + rng.uniform(0, 2 * np.pi))
    elif kind == "impulses":
        x = rng.standard_normal(count) * 0.01
        for _ in range(60):
            at = int(rng.integers(0, count - 2))
            x[at] = rng.choice([-1, 1]) * 10 ** (rng.uniform(-3, 30) / 20)
            if rng.random() < 0.3:
                x[at + 1] = -x[at] * rng.uniform(0.5, 1.0)
    elif kind == "square":
        x = np.zeros(count)
        for k, freq in enumerate(rng.uniform(30, 3000, 4)):
            part = slice(k * count // 4, (k + 1) * count // 4)
            x[part] = 1.9 * np.sign(np.sin(2 * np.pi * freq / RATE * n[part]))
    elif kind == "inter_sample":
        # fs/4 at 45 degrees: samples at 0.707 of the crest, like EBU file 19, plus stretches
        # whose signs follow the interpolator's taps (largest possible overshoot)
        x = 1.41 * np.sin(np.pi / 2 * n + np.pi / 4) * steps(rng, count, -9, 3, 2400)
        pattern = np.array([1, -1, 1, -1, 1, -1, 1, 1, 1, 1, -1, 1, -1, 1, -1, 1], dtype=float)
        for at in rng.integers(100, count - 100, 40):
            x[at:at + 16] = pattern * rng.uniform(0.3, 1.0)
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


KINDS = ["loud_noise", "hf_noise", "sine_bursts", "impulses", "square", "inter_sample"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ceiling_dbtp", [-1.0, -2.0, -3.5])
def test_output_true_peak_never_exceeds_ceiling(kind: str, ceiling_dbtp: float) -> None:
    signal = make_signal(kind, seed=10 * KINDS.index(kind) + int(-2 * ceiling_dbtp))
    assert true_peak_dbtp(signal) > ceiling_dbtp + 2  # the test really exercises the limiter
    for block in (997, 65536):
        out, limiter = limit(signal, ceiling_dbtp, block)
        assert out.shape == signal.shape and out.dtype == np.float32
        assert true_peak_dbtp(out) <= ceiling_dbtp
        assert limiter.samples_limited > 0


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 10**6),
       ceiling_dbtp=st.floats(-6.0, 0.0), block=st.integers(50, 30_000),
       lookahead_ms=st.sampled_from([1.0, 2.5, 5.0, 10.0]),
       release_ms=st.sampled_from([10.0, 80.0, 400.0]))
def test_ceiling_holds_for_random_signals_and_settings(kind: str, seed: int, ceiling_dbtp: float,
                                                       block: int, lookahead_ms: float,
                                                       release_ms: float) -> None:
    signal = make_signal(kind, seed, seconds=0.5)
    out, _ = limit(signal, ceiling_dbtp, block, lookahead_ms=lookahead_ms, release_ms=release_ms)
    assert out.shape == signal.shape
    assert true_peak_dbtp(out) <= ceiling_dbtp


@pytest.mark.parametrize("number", [19, 20, 21, 22, 23])
def test_ebu_inter_sample_peak_files_are_held_under_the_ceiling(number: int) -> None:
    import soundfile as sf

    matches = sorted(ebu_dir().glob(f"seq-3341-{number}-*bit.wav"))
    if not matches:
        pytest.skip(f"EBU Tech 3341 file {number} missing")
    data, rate = sf.read(matches[0], always_2d=True, dtype="float32")
    signal = np.ascontiguousarray(data.T)
    out, limiter = limit(signal, -1.0, 4410, rate=rate)
    assert out.shape == signal.shape
    assert true_peak_dbtp(out, rate) <= -1.0
    assert limiter.gain_reduction_max_db > 0.9


def test_quiet_signal_passes_through_sample_identical() -> None:
    rng = np.random.default_rng(1)
    signal = (rng.standard_normal((2, 3 * RATE)) * 0.05).astype(np.float32)
    assert true_peak_dbtp(signal) < -3.0
    for block in (1, 333, 4410, None):
        piece = signal[:, :5000] if block == 1 else signal
        out, limiter = limit(piece, -1.0, block)
        np.testing.assert_array_equal(out, piece)
        assert limiter.samples_limited == 0
        assert limiter.gain_reduction_max_db == 0.0


def test_gain_is_exactly_one_away_from_a_peak() -> None:
    rng = np.random.default_rng(2)
    signal = (rng.standard_normal(4 * RATE) * 0.03).astype(np.float32)
    burst = slice(2 * RATE, 2 * RATE + 2400)
    signal[burst] = 3.0 * np.sin(np.arange(2400) * 0.3)
    out, limiter = limit(signal, -1.0, 4096)
    lookahead = limiter.lookahead_samples
    untouched_before = burst.start - lookahead - 40
    recovery = int(0.080 * RATE * 12 / 3) + lookahead + 40  # ~12 dB back at 3 dB per 80 ms
    np.testing.assert_array_equal(out[:untouched_before], signal[:untouched_before])
    np.testing.assert_array_equal(out[burst.stop + recovery:], signal[burst.stop + recovery:])
    assert np.any(out[burst] != signal[burst])
    assert true_peak_dbtp(out) <= -1.0


def test_output_is_gain_times_input_with_no_shift_and_linked_gain() -> None:
    rng = np.random.default_rng(4)
    count = 2 * RATE
    left = (rng.standard_normal(count) * 0.02).astype(np.float32)
    spikes = rng.choice(np.arange(500, count - 500), 15, replace=False)
    left[spikes] = rng.choice([-1, 1], 15) * rng.uniform(1.0, 20.0, 15)
    probe = np.full(count, 0.01, dtype=np.float32)  # right channel: out / 0.01 is the gain
    out, limiter = limit(np.stack([left, probe]), -1.0, 1000)
    gain = out[1].astype(np.float64) / 0.01
    assert np.all(gain <= 1.0 + 1e-6) and np.all(gain > 0)
    np.testing.assert_allclose(out[0], gain * left, rtol=2e-6, atol=1e-9)
    ceiling = 10 ** (-1.0 / 20)
    assert np.all(np.abs(out[0, spikes]) <= ceiling)
    # the largest spike's own sample got exactly the gain it needs (less a 0.1 dB margin):
    # with any time shift it would have got a neighbour's gain instead
    largest = spikes[np.argmax(np.abs(left[spikes]))]
    assert abs(out[0, largest]) == pytest.approx(ceiling * 10 ** (-0.1 / 20), rel=0.01)
    assert gain.min() == pytest.approx(10 ** (-limiter.gain_reduction_max_db / 20), rel=1e-6)
    # the gain is smooth: at most the full reduction spread over the lookahead per sample
    assert np.abs(np.diff(gain)).max() <= 1.0 / limiter.lookahead_samples + 1e-6


def test_release_recovers_3_db_per_release_time() -> None:
    count = RATE
    signal = np.zeros((2, count), dtype=np.float32)
    signal[0, 1000:1200] = 4.0 * np.sin(np.arange(200) * 0.2)  # ~13 dB over a -1 dBTP ceiling
    signal[1] = 0.01
    out, _ = limit(signal, -1.0, None, release_ms=80.0)
    gain_db = 20 * np.log10(out[1].astype(np.float64) / 0.01)
    after = 1200 + 300  # past the burst and the attack average
    forty_ms = int(0.040 * RATE)
    assert gain_db[after + forty_ms] - gain_db[after] == pytest.approx(1.5, abs=0.05)


def test_sine_gain_reduction_statistic() -> None:
    n = np.arange(RATE)
    signal = (2.0 * np.sin(2 * np.pi * 440 / RATE * n)).astype(np.float32)
    out, limiter = limit(signal, -1.0, 8192)
    needed_db = 20 * math.log10(2.0) + 1.0
    assert limiter.gain_reduction_max_db == pytest.approx(needed_db + 0.1, abs=0.05)
    assert limiter.samples_limited >= RATE - 50
    assert true_peak_dbtp(out) == pytest.approx(-1.1, abs=0.02)


@pytest.mark.parametrize("block", [1, 37, 1000, 4410, 65536])
def test_output_is_block_size_invariant(block: int) -> None:
    signal = make_signal("loud_noise", seed=7, seconds=0.4 if block < 50 else 3.0)
    signal = np.stack([signal, make_signal("sine_bursts", seed=8, seconds=signal.size / RATE)])
    reference, ref_limiter = limit(signal, -1.0, None)
    out, limiter = limit(signal, -1.0, block)
    assert out.shape == signal.shape
    # The true-peak envelope is bit-exact across block sizes, but each of the two gains is a
    # float64 running sum restarted at block edges, then rounded to float32: either may land
    # on the neighbouring float32, so out = x * g_main * g_safety may move by 3 eps relative
    # (2 gain roundings + 2 half-eps product roundings); 1 eps of gain is 1.0e-6 dB.
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(out, reference, rtol=3 * eps32, atol=0)
    assert limiter.samples_limited == ref_limiter.samples_limited
    assert limiter.gain_reduction_max_db == pytest.approx(ref_limiter.gain_reduction_max_db,
                                                          abs=3e-6)


def test_process_holds_back_the_lookahead_and_flush_returns_the_rest() -> None:
    limiter = TruePeakLimiter(RATE, 1, ceiling_dbtp=-1.0)
    delay = limiter.delay_samples
    assert 0 < delay < int(0.02 * RATE)
    assert limiter.process(np.zeros(10, dtype=np.float32)).shape == (0,)
    assert limiter.process(np.zeros(0, dtype=np.float32)).shape == (0,)
    assert limiter.process(np.zeros(5000, dtype=np.float32)).shape == (5010 - delay,)
    assert limiter.flush().shape == (delay,)
    assert limiter.flush().shape == (0,)
    with pytest.raises(RuntimeError):
        limiter.process(np.zeros(10, dtype=np.float32))


def test_float64_input_gives_float32_output_in_the_same_layout() -> None:
    signal = make_signal("loud_noise", seed=3, seconds=0.5).astype(np.float64)
    out, _ = limit(signal, -1.0, 1000)
    assert out.dtype == np.float32 and out.shape == signal.shape
    out2d, _ = limit(signal[np.newaxis, :], -1.0, 1000)
    assert out2d.shape == (1, signal.size)
    np.testing.assert_array_equal(out2d[0], out)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        TruePeakLimiter(RATE, 1, ceiling_dbtp=-1.0, lookahead_ms=0.0)
    with pytest.raises(ValueError):
        TruePeakLimiter(RATE, 1, ceiling_dbtp=-1.0, release_ms=0.0)
    with pytest.raises(ValueError):
        TruePeakLimiter(RATE, 0, ceiling_dbtp=-1.0)
    limiter = TruePeakLimiter(RATE, 2, ceiling_dbtp=-1.0)
    with pytest.raises(ValueError):
        limiter.process(np.zeros(100, dtype=np.float32))
