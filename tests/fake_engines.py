"""A test-only cloning engine: speaks a tone per text, so consent rules can be tested without a model."""

from __future__ import annotations

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities


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
    def identity(cls, voice):
        return "tone-cloner 1"

    def synthesize(self, texts, voice, seeds):
        out = []
        for text in texts:
            t = np.arange(int(24_000 * (0.5 + 0.05 * len(text)))) / 24_000
            out.append((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        return out
