"""Same text, voice and seed give bit-identical chunk audio, for every shipped engine usable here:
twice in one engine, in a fresh engine, in another process, and whatever was rendered before."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from castline.engines.registry import ENGINE_CLASSES, engine_class, voice_usability
from castline.voices.profiles import VoiceProfile, load_voice_library

TEXT = "Hello there. This is castline, reading a line twice; it should sound the same both times."
OTHER = "Something else entirely, said first."

# Engines whose voices ship in a package or the OS here. vibevoice and pocket-tts need downloaded
# weights; their own tests check seeded determinism on tiny checkpoints.
SHIPPED = {"hibari": "heart", "piper": "joe", "espeak": None}


def _voice(name: str, voices_dir) -> VoiceProfile:
    voice_id = SHIPPED[name]
    if voice_id is None:
        return VoiceProfile(voice_id="espeak-en", display_name="espeak en", language="en",
                            engine="espeak", engine_voice="en")
    return load_voice_library(voices_dir).get(voice_id)


def _usable(name: str, voices_dir) -> VoiceProfile:
    voice = _voice(name, voices_dir)
    usable = voice_usability(voice)
    if not usable.usable:
        pytest.skip(f"{name}: {usable.reason}")
    return voice


def test_every_shipped_engine_is_covered():
    assert set(SHIPPED) <= set(ENGINE_CLASSES)
    for name in SHIPPED:
        assert engine_class(name).capabilities.deterministic, name


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_same_chunk_twice_gives_identical_samples(name, voices_dir):
    voice = _usable(name, voices_dir)
    engine = engine_class(name)()
    try:
        first, other_seed = engine.synthesize([TEXT, TEXT], voice, [7, 8])
        engine.synthesize([OTHER], voice, [3])  # whatever ran in between must not matter
        [again] = engine.synthesize([TEXT], voice, [7])
    finally:
        engine.close()
    fresh = engine_class(name)()
    try:
        [from_fresh] = fresh.synthesize([TEXT], voice, [7])
    finally:
        fresh.close()
    assert first.dtype == np.float32 and first.size > engine.capabilities.sample_rate
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(from_fresh, first)
    if name != "espeak":  # espeak-ng draws no noise: the seed has nothing to change
        assert other_seed.size != first.size or not np.array_equal(other_seed, first)


_OTHER_PROCESS = """
import sys
import numpy as np
from castline.engines.registry import engine_class
from castline.voices.profiles import load_voice_library
voice = load_voice_library(sys.argv[2]).get(sys.argv[3])
engine = engine_class(sys.argv[1])()
[audio] = engine.synthesize([sys.argv[4]], voice, [7])
np.save(sys.argv[5], audio)
"""


@pytest.mark.parametrize("name", ["hibari", "piper"])
def test_another_process_gives_identical_samples(name, voices_dir, tmp_path):
    # a resumed render synthesises the missing chunks in a new process
    voice = _usable(name, voices_dir)
    engine = engine_class(name)()
    try:
        [here] = engine.synthesize([TEXT], voice, [7])
    finally:
        engine.close()
    saved = tmp_path / "there.npy"
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, name, str(voices_dir), voice.voice_id, TEXT, str(saved)],
                   check=True, capture_output=True, timeout=300)
    np.testing.assert_array_equal(np.load(saved), here)


def test_piper_noise_bank_regrown_gives_the_same_noise(voices_dir, monkeypatch):
    import castline.engines.piper as piper

    voice = _usable("piper", voices_dir)
    engine = piper.PiperEngine()
    try:
        [planned] = engine.synthesize([TEXT], voice, [7])
        # a bank far too small is regrown; its first values, and so the audio, are the same
        monkeypatch.setattr(piper, "_NOISE_PER_ID", 1)
        [regrown] = engine.synthesize([TEXT], voice, [7])
    finally:
        engine.close()
    np.testing.assert_array_equal(regrown, planned)


def test_piper_identity_names_the_noise_method(voices_dir):
    from castline.engines.piper import NOISE_METHOD, PiperEngine

    voice = _usable("piper", voices_dir)
    # chunks cached before noise was seeded must not be reused as if they were reproducible
    assert PiperEngine.identity(voice).endswith(NOISE_METHOD)
