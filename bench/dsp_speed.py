"""CPU time of the streaming DSP over 30 minutes of 24 kHz mono noise-like audio.

Usage: python bench/dsp_speed.py [minutes]

Two signals, generated block by block (generation is not timed):
  speech-like: band-limited noise with a syllable-rate envelope, about -16 LUFS, so the
               limiter (ceiling -1 dBTP) acts only on occasional peaks;
  loud:        the same, 12 dB hotter, so the limiter works on nearly every sample.
Times are process CPU seconds (time.process_time) spent inside process()/flush()/result().
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy.signal import butter, sosfilt

from castline.dsp.limiter import TruePeakLimiter
from castline.dsp.loudness import LoudnessMeter

SAMPLE_RATE = 24_000
BLOCK_SAMPLES = 65_536


def blocks(minutes: float, gain_db: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * SAMPLE_RATE)
    shaping = butter(2, [120, 5000], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    state = np.zeros((shaping.shape[0], 2))
    syllable = SAMPLE_RATE // 8
    scale = 10.0 ** (gain_db / 20.0)
    for start in range(0, total, BLOCK_SAMPLES):
        n = min(BLOCK_SAMPLES, total - start)
        noise, state = sosfilt(shaping, rng.standard_normal(n), zi=state)
        envelope = np.repeat(rng.uniform(0.0, 1.0, n // syllable + 1) ** 2, syllable)[:n]
        yield (noise * envelope * scale).astype(np.float32)


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    for label, gain_db in (("speech-like", -9.0), ("loud", 1.0)):
        meter = LoudnessMeter(SAMPLE_RATE, 1)
        limiter = TruePeakLimiter(SAMPLE_RATE, 1, ceiling_dbtp=-1.0)
        meter_cpu = limiter_cpu = 0.0
        for block in blocks(minutes, gain_db):
            t0 = time.process_time()
            meter.process(block)
            t1 = time.process_time()
            limiter.process(block)
            t2 = time.process_time()
            meter_cpu += t1 - t0
            limiter_cpu += t2 - t1
        t0 = time.process_time()
        reading = meter.result()
        t1 = time.process_time()
        limiter.flush()
        t2 = time.process_time()
        meter_cpu += t1 - t0
        limiter_cpu += t2 - t1
        limited = limiter.samples_limited / reading.duration_samples
        print(f"{label:12s} {minutes:g} min @ {SAMPLE_RATE} Hz mono, {BLOCK_SAMPLES}-sample blocks: "
              f"meter+true-peak {meter_cpu:.2f} s CPU, limiter {limiter_cpu:.2f} s CPU "
              f"(I {reading.integrated_lufs:.1f} LUFS, TP {reading.true_peak_dbtp:+.1f} dBTP, "
              f"{100 * limited:.1f} % of samples limited, max GR "
              f"{limiter.gain_reduction_max_db:.1f} dB)")


if __name__ == "__main__":
    main()
