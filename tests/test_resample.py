"""Resampling: scipy's resample_poly, bit for bit, without importing scipy.signal."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import resample_poly

from castline.audio import resample as resampling
from castline.audio.resample import resample

RATES = [(22_050, 24_000), (24_000, 16_000), (24_000, 22_050), (16_000, 24_000), (48_000, 24_000),
         (44_100, 24_000), (24_000, 8_000), (8_000, 24_000), (24_000, 11_025)]


@pytest.mark.parametrize("source_rate, target_rate", RATES)
def test_every_sample_is_scipys(source_rate, target_rate):
    rng = np.random.default_rng(source_rate + target_rate)
    divisor = np.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    for shape in [(1,), (5,), (4_321,), (2, 30_001)]:
        audio = rng.standard_normal(shape).astype(np.float32)
        expected = resample_poly(audio, up, down, axis=-1, window=("kaiser", 8.0)).astype(np.float32)
        ours = resample(audio, source_rate, target_rate)
        assert ours.dtype == np.float32 and ours.shape == expected.shape
        assert np.array_equal(ours, expected), (source_rate, target_rate, shape)


def test_the_same_rate_is_the_same_audio():
    audio = np.arange(10, dtype=np.float32)
    assert resample(audio, 24_000, 24_000) is not None and np.array_equal(resample(audio, 24_000, 24_000), audio)


def test_the_loop_is_scipys_own_and_checked(monkeypatch):
    loop = resampling._upfirdn_loop()
    assert loop is not None and loop.__name__ == "scipy.signal._upfirdn_apply"
    probe = np.array([0.5, -1.0, 0.25, 1.0, 0.0, -0.5, 0.75], dtype=np.float32)
    np.testing.assert_allclose(resampling._written_out(probe, 3, 2), resample(probe, 2, 3), atol=1e-6)

    class Idle:  # a loop of another shape: leaves its output untouched
        _output_len, mode_enum = loop._output_len, loop.mode_enum

        @staticmethod
        def _apply(*arguments):
            return None

    monkeypatch.setattr(resampling, "signal_extension", lambda name: Idle)
    assert resampling._upfirdn_loop.__wrapped__() is None
    monkeypatch.setattr(resampling, "signal_extension", lambda name: None)
    assert resampling._upfirdn_loop.__wrapped__() is None


def test_resampling_in_a_fresh_process_leaves_scipy_signal_unimported_and_shares_its_loop():
    probe = ("import sys, numpy as np\n"
             "from castline.audio.resample import resample\n"
             "tone = np.sin(np.arange(22_050) * 0.05).astype(np.float32)\n"
             "ours = resample(tone, 22_050, 24_000)\n"
             "before = 'scipy.signal' in sys.modules\n"
             "loop = sys.modules['scipy.signal._upfirdn_apply']\n"
             "from scipy.signal import resample_poly\n"
             "same = np.array_equal(ours, resample_poly(tone, 160, 147, window=('kaiser', 8.0)).astype(np.float32))\n"
             "print(before, sys.modules['scipy.signal._upfirdn_apply'] is loop, same)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "True"]
