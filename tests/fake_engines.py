"""A test-only cloning engine: speaks a tone per text, so consent rules can be tested without a model."""

from __future__ import annotations

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, WindowedEngine, WindowError


class ToneCloner(Engine):
    name = "tone-cloner"
    capabilities = EngineCapabilities(languages=("en",), cloning=True, max_chars=200, target_chars=150,
                                      sample_rate=24_000, deterministic=True)

    @classmethod
    def availability(cls):
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice):
        return Availability(True) if voice.reference else Availability(False, "voice has no reference audio to clone")

    @classmethod
    def identity(cls, voice, options=None):
        return "tone-cloner 1"

    def synthesize(self, texts, voice, seeds):
        out = []
        for text in texts:
            t = np.arange(int(24_000 * (0.5 + 0.05 * len(text)))) / 24_000
            out.append((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        return out


class ToneWindows(WindowedEngine):
    """Renders a window as one waveform: each line a speaker-pitched harmonic tone (length grows
    with the text) and 400 ms of room tone between lines — so true line starts are known."""

    name = "tone-windows"
    capabilities = EngineCapabilities(languages=("en",), cloning=True, max_chars=300, target_chars=200,
                                      sample_rate=24_000, deterministic=True)
    fail_seeds: set[int] = set()
    calls: list[int] = []
    batch_sizes: list[int | None] = []
    PAUSE = 9_600

    @classmethod
    def availability(cls):
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice):
        return Availability(True) if voice.reference else Availability(False, "voice has no reference audio to clone")

    @classmethod
    def identity(cls, voice, options=None):
        return "tone-windows 1"

    @staticmethod
    def line_samples(text):
        return int(24_000 * (0.6 + 0.04 * len(text)))

    def synthesize(self, texts, voice, seeds):
        raise NotImplementedError

    def synthesize_windows(self, windows, batch_size=None):
        ToneWindows.calls.append(len(windows))
        ToneWindows.batch_sizes.append(batch_size)
        out = []
        for index, window in enumerate(windows):
            if window.seed in self.fail_seeds:
                raise WindowError(f"window {index}: no audio (test)")
            rng = np.random.default_rng(window.seed)
            parts = []
            for line_index, line in enumerate(window.lines):
                if line_index:  # room tone: low-passed noise, as a room's hum and air are
                    hum = np.convolve(rng.standard_normal(self.PAUSE), np.hanning(64) / 32, mode="same")
                    parts.append((hum * 1e-4).astype(np.float32))
                t = np.arange(self.line_samples(line.text)) / 24_000
                f0 = 120 + 60 * line.speaker
                tone = sum(np.sin(2 * np.pi * k * f0 * t) / k ** 2 for k in range(1, 6))
                envelope = np.minimum(1, np.minimum(t, t[-1] - t) / 0.02)
                parts.append((0.1 * tone * envelope).astype(np.float32))
            out.append(np.concatenate(parts))
        return out


class FlakyHibari(Engine):
    """hibari, except that the first take of each text is wrong: another sentence's audio, or
    silence for texts containing 'quiet'. Later takes are the real thing. With ``flaky_marker``
    set, only texts containing it get a wrong first take."""

    name = "flaky-hibari"
    capabilities = EngineCapabilities(languages=("en",), cloning=False, max_chars=400, target_chars=300,
                                      sample_rate=24_000, deterministic=True)
    takes: dict[str, int] = {}
    flaky_marker: str | None = None

    @classmethod
    def availability(cls):
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice):
        return Availability(True)

    @classmethod
    def identity(cls, voice, options=None):
        return "flaky-hibari 1"

    def synthesize(self, texts, voice, seeds):
        from castline.engines.hibari import HibariEngine

        real = HibariEngine()
        out = []
        for text, seed in zip(texts, seeds):
            count = FlakyHibari.takes.get(text, 0)
            FlakyHibari.takes[text] = count + 1
            if self.flaky_marker is not None and self.flaky_marker not in text:
                count = 1
            if count == 0 and "quiet" in text:
                out.append(np.zeros(48_000, np.float32))
            elif count == 0:
                [wrong] = real.synthesize(["The weather in the mountains changed quickly that afternoon."],
                                          voice, [seed])
                out.append(wrong)
            else:
                out.extend(real.synthesize([text], voice, [seed]))
        return out
