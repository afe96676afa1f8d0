"""The Pocket TTS engine on a tiny random checkpoint: shapes, batching, seeds, voice cache, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

from conftest import speech_like
from pocket_tts_tiny import SAMPLES_PER_FRAME, build_tiny_pocket_tts, expected_frames

from castline.engines.base import Availability, EngineOptions
from castline.engines.pocket_tts import PocketTTSEngine
from castline.core.errors import EngineError
from castline.core.hashing import sha256_file
from castline.voices.profiles import ConsentRecord, ReferenceAudio, VoiceProfile

pytestmark = pytest.mark.skipif(not PocketTTSEngine.availability().usable,
                                reason=PocketTTSEngine.availability().reason)

LONG = "Welcome back to the show, today we talk about rivers."
SHORT = "Hi there."
MIDDLE = "The weather was strange all week, wasn't it?"


def _voice(folder, voice_id: str, seed: int, seconds: float = 3.0) -> VoiceProfile:
    path = folder / f"{voice_id}.wav"
    soundfile.write(str(path), speech_like(seconds, seed=seed), 24_000, subtype="PCM_24")
    digest = sha256_file(path)
    return VoiceProfile(voice_id=voice_id, display_name=voice_id.title(), language="en", engine="pocket-tts",
                        engine_voice="clone", reference=ReferenceAudio(path=str(path), sha256=digest),
                        consent=ConsentRecord(who=voice_id, when="2025-01-01", scope="tests",
                                              statement="synthetic test signal"),
                        profile_hash=f"profile-{voice_id}-{digest[:12]}")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_pocket_tts(tmp_path_factory.mktemp("pocket-tts") / "tiny")


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pocket-voices")
    return {name: _voice(folder, name, seed) for name, seed in (("ada", 1), ("bo", 2), ("cy", 3))}


@pytest.fixture(scope="module")
def engine(tiny_dir):
    engine = PocketTTSEngine(EngineOptions(model=str(tiny_dir)))
    yield engine
    engine.close()


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-4 * float(np.abs(b).max())


def test_rows_are_float32_mono_trimmed_to_their_own_frames(engine, voices):
    texts = [LONG, SHORT, MIDDLE]
    audio = engine.synthesize(texts, voices["ada"], [11, 12, 13])
    assert [a.dtype for a in audio] == [np.float32] * 3 and all(a.ndim == 1 for a in audio)
    # The short text gets more tail frames, so the rows of one batch differ in length.
    assert [a.size for a in audio] == [expected_frames(text) * SAMPLES_PER_FRAME for text in texts]
    assert audio[0].size != audio[1].size
    assert all(np.isfinite(a).all() and np.abs(a).max() > 0 for a in audio)


def test_a_batch_matches_its_rows_rendered_one_at_a_time(engine, voices):
    texts, seeds = [LONG, SHORT, MIDDLE], [5, 6, 7]
    batched = engine.synthesize(texts, voices["ada"], seeds)
    alone = [engine.synthesize([text], voices["ada"], [seed])[0] for text, seed in zip(texts, seeds)]
    assert all(_close(b, a) for b, a in zip(batched, alone))
    # Per-row generators: a row does not depend on its neighbours or its place in the batch.
    reordered = engine.synthesize(texts[::-1], voices["ada"], seeds[::-1])[::-1]
    assert all(_close(r, a) for r, a in zip(reordered, alone))


def test_same_seed_is_bit_identical_and_another_seed_differs(engine, voices):
    first = engine.synthesize([LONG, LONG], voices["bo"], [3, 4])
    again = engine.synthesize([LONG, LONG], voices["bo"], [3, 4])
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.allclose(first[0], first[1])


def test_each_voice_is_encoded_once_and_reused(tiny_dir, voices):
    engine = PocketTTSEngine(EngineOptions(model=str(tiny_dir)))
    try:
        engine.synthesize([LONG], voices["cy"], [1])
        assert (engine.voice_cache_misses, engine.voice_cache_hits) == (1, 0)
        engine.synthesize([SHORT, MIDDLE], voices["cy"], [2, 3])
        engine.synthesize([MIDDLE], voices["cy"], [4])
        assert (engine.voice_cache_misses, engine.voice_cache_hits) == (1, 2)
        engine.synthesize([LONG], voices["ada"], [1])
        assert (engine.voice_cache_misses, engine.voice_cache_hits) == (2, 2)
        engine.close()
        engine.synthesize([LONG], voices["cy"], [1])
        assert engine.voice_cache_misses == 3
    finally:
        engine.close()


def test_different_references_give_different_voices(engine, voices):
    ada, bo = engine.voice_latents(voices["ada"]), engine.voice_latents(voices["bo"])
    assert ada.dtype == np.float32 and ada.ndim == 2 and ada.shape[1] == 8
    # 3 s of reference plus the 80 ms pause the processor appends, at 12.5 frames/s.
    assert ada.shape[0] == bo.shape[0] == int(np.ceil((3.0 + 0.08) * 24_000 / SAMPLES_PER_FRAME))
    assert not np.allclose(ada, bo, atol=1e-3)
    [with_ada] = engine.synthesize([LONG], voices["ada"], [1])
    [with_bo] = engine.synthesize([LONG], voices["bo"], [1])
    assert with_ada.shape == with_bo.shape and not np.allclose(with_ada, with_bo)


def test_output_validation_names_the_text(engine, voices, monkeypatch):
    import torch

    engine.synthesize([SHORT], voices["ada"], [1])
    processor = engine._loaded.processor
    monkeypatch.setattr(processor, "decode", lambda latents, mask: [torch.full((1920,), float("nan"))])
    with pytest.raises(EngineError, match="non-finite audio for 'Hi there.'"):
        engine.synthesize([SHORT], voices["ada"], [1])
    monkeypatch.setattr(processor, "decode", lambda latents, mask: [torch.zeros(0)])
    with pytest.raises(EngineError, match="no audio for 'Hi there.'"):
        engine.synthesize([SHORT], voices["ada"], [1])


def test_input_errors_are_one_line(engine, voices):
    with pytest.raises(EngineError, match="empty text"):
        engine.synthesize(["  "], voices["ada"], [1])
    with pytest.raises(EngineError, match="2 texts but 1 seeds"):
        engine.synthesize([SHORT, LONG], voices["ada"], [1])
    no_reference = VoiceProfile(voice_id="x", display_name="X", language="en", engine="pocket-tts",
                                engine_voice="clone")
    with pytest.raises(EngineError, match="no reference audio"):
        engine.synthesize([SHORT], no_reference, [1])


def test_bad_model_settings_are_one_line_errors(tmp_path, tiny_dir):
    cases = [
        (None, "needs --model DIR_OR_HUB_ID"),
        (str(tmp_path / "missing-model"), "missing-model' not found"),
        (str(tmp_path), "has no config.json"),
    ]
    for model, message in cases:
        with pytest.raises(EngineError, match=message) as caught:
            PocketTTSEngine(EngineOptions(model=model))
        assert "\n" not in str(caught.value)
    other = tmp_path / "not-pocket"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EngineError, match="is a 'bert' checkpoint, not Pocket TTS"):
        PocketTTSEngine(EngineOptions(model=str(other))).synthesize([SHORT], _voice(tmp_path, "v", 1), [1])
    for device, dtype, message in (("cuda", "auto", "CUDA is not available"),
                                   ("cpu", "float16", "float16 needs a CUDA device"),
                                   ("tpu", "auto", "unknown device 'tpu'")):
        if device == "cuda" and _has_cuda():
            continue
        engine = PocketTTSEngine(EngineOptions(model=str(tiny_dir), device=device, dtype=dtype))
        with pytest.raises(EngineError, match=message):
            engine.synthesize([SHORT], _voice(tmp_path, "w", 2), [1])


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_voice_availability_needs_a_reference(voices):
    bare = VoiceProfile(voice_id="x", display_name="X", language="en", engine="pocket-tts", engine_voice="clone")
    assert PocketTTSEngine.voice_availability(bare) == Availability(False, "voice has no reference audio to clone")
    assert PocketTTSEngine.voice_availability(voices["ada"]).usable
    assert PocketTTSEngine.availability().usable


def test_identity_is_content_based_and_loads_nothing(tiny_dir, tmp_path, voices):
    code = textwrap.dedent(f"""
        import sys
        from castline.engines.base import EngineOptions
        from castline.engines.pocket_tts import PocketTTSEngine
        from castline.voices.profiles import VoiceProfile
        voice = VoiceProfile(voice_id="x", display_name="X", language="en", engine="pocket-tts", engine_voice="clone")
        assert "torch" not in sys.modules and "transformers" not in sys.modules, "import pulled in torch"
        assert PocketTTSEngine.availability().usable
        engine = PocketTTSEngine(EngineOptions(model={str(tiny_dir)!r}))
        print(PocketTTSEngine.identity(voice, engine.options))
        assert "torch" not in sys.modules and "transformers" not in sys.modules, "identity pulled in torch"
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    identity = result.stdout.strip()
    options = EngineOptions(model=str(tiny_dir))
    assert identity == PocketTTSEngine.identity(voices["ada"], options)
    assert identity.startswith("pocket-tts transformers ") and " model local:" in identity
    # A copy elsewhere is the same model; a changed generation setting is not.
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dir, copy)
    assert PocketTTSEngine.identity(voices["ada"], EngineOptions(model=str(copy))) == identity
    settings = json.loads((copy / "generation_config.json").read_text())
    settings["temperature"] = 0.5
    (copy / "generation_config.json").write_text(json.dumps(settings))
    assert PocketTTSEngine.identity(voices["ada"], EngineOptions(model=str(copy))) != identity
    assert PocketTTSEngine.identity(voices["ada"], EngineOptions(model="kyutai/pocket-tts")).split(" model ")[1] \
        .startswith("hub:kyutai/pocket-tts ")
    assert PocketTTSEngine.identity(voices["ada"], EngineOptions(model=str(tiny_dir), dtype="bfloat16")) != identity


def test_a_moved_checkpoint_finds_its_codec_inside(tiny_dir, tmp_path, engine, voices):
    moved = tmp_path / "moved"
    shutil.copytree(tiny_dir, moved)
    settings = json.loads((moved / "processor_config.json").read_text())
    # As if the original folder were gone: the processor's recorded codec path no longer exists.
    settings["audio_tokenizer"]["audio_tokenizer_name_or_path"] = str(tmp_path / "gone" / "audio_tokenizer")
    (moved / "processor_config.json").write_text(json.dumps(settings))
    assert PocketTTSEngine.identity(voices["ada"], EngineOptions(model=str(moved))) == \
        PocketTTSEngine.identity(voices["ada"], EngineOptions(model=str(tiny_dir)))
    relocated = PocketTTSEngine(EngineOptions(model=str(moved)))
    try:
        [audio] = relocated.synthesize([MIDDLE], voices["ada"], [9])
    finally:
        relocated.close()
    [reference] = engine.synthesize([MIDDLE], voices["ada"], [9])
    assert np.array_equal(audio, reference)
    shutil.rmtree(moved / "audio_tokenizer")
    with pytest.raises(EngineError, match="copy the codec folder along with the checkpoint"):
        PocketTTSEngine(EngineOptions(model=str(moved))).synthesize([MIDDLE], voices["ada"], [9])
