"""Render sentences with the project's offline voices for tests (24 kHz float32)."""

from __future__ import annotations

import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.engines.registry import engine_class
from castline.voices.profiles import load_voice_library


def render_sentences(engine_name, voice_id, texts, voices_dir):
    """One 24 kHz float32 array per text (seed = position), or skip when the engine is missing."""
    engine_cls = engine_class(engine_name)
    if not engine_cls.availability().usable:
        pytest.skip(f"{engine_name} is not installed")
    engine = engine_cls()
    try:
        audio = engine.synthesize(list(texts), load_voice_library(voices_dir).get(voice_id), list(range(len(texts))))
        return [resample(a, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE) for a in audio]
    finally:
        engine.close()
