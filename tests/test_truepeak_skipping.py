"""Skipping true-peak work must never change a result: the bound holds, and the meter, the
envelope above a floor and the limiter give bit-identical output with skipping turned off."""

from __future__ import annotations

import numpy as np
import pytest

import castline.dsp.truepeak as truepeak
from castline.dsp.limiter import TruePeakLimiter
from castline.dsp.truepeak import HALF_TAPS, TruePeakEnvelope, TruePeakMeter, design_true_peak_filter
from conftest import speech_like

RATE = 24_000


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    n = np.arange(RATE)
    sibilant = (rng.standard_normal(RATE) * 0.2).astype(np.float32)  # white: much energy near Nyquist
    nyquist = (0.8 * np.cos(np.pi * n * 0.97 + 0.3)).astype(np.float32)  # a tone just under Nyquist
    clicks = np.zeros(RATE, np.float32)
    clicks[rng.integers(0, RATE, 40)] = rng.uniform(-1, 1, 40).astype(np.float32)
    speech = speech_like(3.0, RATE, seed=2, level_db=-18)
    speech[RATE:RATE + 3000] *= 0.01  # quiet stretches beside loud ones
    return {"sibilant": sibilant, "nyquist": nyquist, "clicks": clicks, "speech": speech,
            "mixed": np.concatenate([speech, sibilant * 0.3, clicks, speech * 0.1])}


def full_envelope(signal: np.ndarray, rate: int = RATE) -> np.ndarray:
    env = TruePeakEnvelope(rate, 1)
    return np.concatenate([env.process(signal), env.flush()])


@pytest.mark.parametrize("rate", [24_000, 96_000])
@pytest.mark.parametrize("name", sorted(signals()))
def test_envelope_never_exceeds_its_bound(name: str, rate: int) -> None:
    signal = signals()[name]
    k0, k1, k2 = design_true_peak_filter(rate).bound
    env = full_envelope(signal, rate)
    padded = np.concatenate([np.zeros(HALF_TAPS - 1), signal.astype(np.float64), np.zeros(HALF_TAPS)])
    reach = np.lib.stride_tricks.sliding_window_view(padded, 2 * HALF_TAPS)
    slope = np.abs(np.diff(reach, axis=1)).max(axis=1)
    curvature = np.abs(np.diff(reach, 2, axis=1)).max(axis=1)
    bound = k0 * np.abs(reach).max(axis=1) + k1 * slope + k2 * curvature
    assert np.all(env <= bound[:env.size])
    # and it is tight where the audio is smooth: well under the 6 dB of a plain L1 bound
    if name == "speech":
        loud = np.abs(signal) > 0.5 * np.abs(signal).max()
        assert np.median(bound[:signal.size][loud] / np.abs(signal)[loud]) < 10 ** (1.0 / 20)


def compute_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truepeak, "_stretches_to_compute",
                        lambda extended, filt, skippable, floor: [(0, extended.shape[-1] - 2 * HALF_TAPS + 1)])


@pytest.mark.parametrize("block", [333, 4410, 65536, 200_000])
def test_meter_reads_the_same_with_and_without_skipping(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def read(signal: np.ndarray) -> list[float]:
        meter = TruePeakMeter(RATE, 2)
        readings = []
        for start in range(0, signal.shape[1], block):
            meter.process(signal[:, start:start + block])
            readings.append(meter.true_peak_linear)
        return readings

    parts = list(signals().values())
    stereo = np.stack([np.concatenate(parts), np.concatenate(parts[::-1])])
    skipped = read(stereo)
    compute_everything(monkeypatch)
    assert read(stereo) == skipped


def test_values_above_the_floor_are_exact() -> None:
    signal = signals()["mixed"]
    filt = design_true_peak_filter(RATE)
    extended = np.concatenate([np.zeros(HALF_TAPS - 1, np.float32), signal, np.zeros(HALF_TAPS, np.float32)])
    everything = truepeak.true_peak_envelope(extended, filt)
    for floor in (0.05, 0.3, 0.7, float(everything.max())):
        above = truepeak.true_peak_envelope(extended, filt, floor=floor)
        kept = everything > floor
        np.testing.assert_array_equal(above[kept], everything[kept])
        assert np.all(above[~kept] <= floor)


@pytest.mark.parametrize("ceiling_dbtp", [-1.0, -12.0])
def test_limiter_output_is_identical_without_skipping(ceiling_dbtp: float, monkeypatch: pytest.MonkeyPatch) -> None:
    signal = np.concatenate(list(signals().values())) * np.float32(1.5)

    def run() -> tuple[np.ndarray, int, float]:
        limiter = TruePeakLimiter(RATE, 1, ceiling_dbtp=ceiling_dbtp)
        out = np.concatenate([limiter.process(signal[s:s + 5000]) for s in range(0, signal.size, 5000)]
                             + [limiter.flush()])
        return out, limiter.samples_limited, limiter.gain_reduction_max_db

    skipped = run()
    compute_everything(monkeypatch)
    everything = run()
    np.testing.assert_array_equal(skipped[0], everything[0])
    assert skipped[1:] == everything[1:]
    assert skipped[1] > 0
