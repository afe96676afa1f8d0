"""The VibeVoice engine on a tiny random checkpoint loaded through ``from_pretrained`` (as a user's is)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from castline.engines.base import EngineOptions, Window, WindowError, WindowLine
from castline.engines.vibevoice import DpmSolverScheduler, VibeVoiceEngine, token_budget, window_seconds
from castline.core.errors import EngineError
from castline.voices.profiles import ReferenceAudio, VoiceProfile
from conftest import speech_like

pytest.importorskip("transformers.models.vibevoice")
from vibevoice_tiny import ForceAudioFrames, build_tiny_vibevoice  # noqa: E402

HOP = 3200


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_vibevoice(tmp_path_factory.mktemp("vibevoice") / "tiny")


@pytest.fixture(scope="module")
def speaking_dir(tmp_path_factory):
    return build_tiny_vibevoice(tmp_path_factory.mktemp("vibevoice") / "speaking", seed=1, speak_frames=3)


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("references")
    made = {}
    for name, seconds, seed in (("ada", 1.2, 1), ("bo", 0.7, 2), ("cy", 0.9, 3)):
        path = folder / f"{name}.wav"
        soundfile.write(path, speech_like(seconds, seed=seed), 24_000, subtype="FLOAT")
        made[name] = VoiceProfile(voice_id=name, display_name=name, language="en", engine="vibevoice",
                                  engine_voice=name, reference=ReferenceAudio(path=str(path), sha256=f"sha-{name}"),
                                  profile_hash=f"profile-{name}")
    return made


@pytest.fixture(scope="module")
def engine(tiny_dir):
    engine = VibeVoiceEngine(EngineOptions(model=str(tiny_dir)))
    yield engine
    engine.close()


def forced(engine, frames_by_word: dict[str, int]):
    """Make each row emit the frame count named by the first word of its window's first line."""
    engine.logits_processor_factory = lambda windows: [
        ForceAudioFrames([frames_by_word[window.lines[0].text.split()[0]] for window in windows])]


def window(text: str, *voices: VoiceProfile, seed: int = 1, seconds: float = 2.0, more=()) -> Window:
    lines = (WindowLine(0, text),) + tuple(WindowLine(slot, line) for slot, line in more)
    return Window(lines=lines, voices=tuple(voices), seed=seed, estimated_seconds=seconds)


def test_import_availability_and_identity_do_not_import_torch(tiny_dir):
    code = ("import sys\n"
            "from castline.engines.base import EngineOptions\n"
            "from castline.engines.vibevoice import VibeVoiceEngine\n"
            "from castline.voices.profiles import VoiceProfile\n"
            "voice = VoiceProfile('v', 'v', 'en', 'vibevoice', 'v')\n"
            "assert VibeVoiceEngine.availability().usable\n"
            f"VibeVoiceEngine.identity(voice, EngineOptions(model={str(tiny_dir)!r}))\n"
            "VibeVoiceEngine.identity(voice, EngineOptions(model='vibevoice/VibeVoice-1.5B-hf'))\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_availability_and_voice_availability_are_cheap(voices):
    assert VibeVoiceEngine.availability().usable
    assert VibeVoiceEngine.voice_availability(voices["ada"]).usable
    bare = dataclasses.replace(voices["ada"], reference=None)
    verdict = VibeVoiceEngine.voice_availability(bare)
    assert not verdict.usable and verdict.reason == "voice has no reference audio to clone"


def test_identity_is_stable_and_does_not_load(tiny_dir, speaking_dir, voices, tmp_path):
    engine = VibeVoiceEngine(EngineOptions(model=str(tiny_dir)))
    first = engine.identity(voices["ada"])
    assert engine.identity(voices["ada"]) == first
    moved = shutil.copytree(tiny_dir, tmp_path / "moved")
    assert VibeVoiceEngine.identity(voices["ada"], EngineOptions(model=str(moved))) == first
    assert VibeVoiceEngine.identity(voices["ada"], EngineOptions(model=str(tiny_dir))) == first
    assert not engine.loaded
    assert "transformers 5." in first and "model dir:" in first
    assert engine.identity(voices["ada"], EngineOptions(model=str(tiny_dir), diffusion_steps=5)) != first
    other = VibeVoiceEngine.identity(voices["ada"], EngineOptions(model=str(speaking_dir)))
    assert model_part(other) != model_part(first)
    assert "model hub:vibevoice/VibeVoice-1.5B-hf " in VibeVoiceEngine.identity(
        voices["ada"], EngineOptions(model="vibevoice/VibeVoice-1.5B-hf"))


def model_part(identity: str) -> str:
    return identity.split(" model ")[1].split()[0]


def test_model_option_is_required_and_bad_paths_are_one_line_errors(tmp_path):
    with pytest.raises(EngineError, match="needs --model"):
        VibeVoiceEngine(EngineOptions())
    missing = tmp_path / "nowhere"
    with pytest.raises(EngineError) as error:
        VibeVoiceEngine(EngineOptions(model=str(missing)))
    assert str(missing) in str(error.value) and "\n" not in str(error.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EngineError) as error:
        VibeVoiceEngine(EngineOptions(model=str(empty))).load()
    assert str(empty) in str(error.value) and "config.json" in str(error.value) and "\n" not in str(error.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EngineError) as error:
        VibeVoiceEngine(EngineOptions(model=str(broken))).load()
    assert f"cannot load vibevoice model '{broken}'" in str(error.value) and "\n" not in str(error.value)


def test_cuda_without_cuda_is_a_clear_error(tiny_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EngineError, match="--device cuda: CUDA is not available here"):
        VibeVoiceEngine(EngineOptions(model=str(tiny_dir), device="cuda")).load()


def test_forced_frames_give_exact_lengths(engine, voices):
    forced(engine, {"one": 4, "two": 1})
    audio = engine.synthesize_windows([
        window("one speaker then another", voices["ada"], voices["bo"], more=[(1, "Yes."), (0, "Right.")]),
        window("two", voices["cy"])])
    assert [a.size for a in audio] == [4 * HOP, 1 * HOP]
    for samples in audio:
        assert samples.dtype == np.float32 and samples.ndim == 1 and np.isfinite(samples).all()
        assert np.abs(samples).max() > 1e-3


def test_batched_equals_unbatched(engine, voices):
    forced(engine, {"alpha": 3, "beta": 5, "gamma": 2})
    windows = [window("alpha says hi", voices["ada"], voices["bo"], seed=11, more=[(1, "Hello back.")]),
               window("beta is longer", voices["bo"], seed=12, seconds=4.0),
               window("gamma", voices["cy"], voices["ada"], seed=13, more=[(1, "Sure.")])]
    rows_per_call = []
    force = engine.logits_processor_factory
    engine.logits_processor_factory = lambda batch: rows_per_call.append(len(batch)) or force(batch)
    assert engine.batch_size == 4
    together = engine.synthesize_windows(windows)
    alone = engine.synthesize_windows(windows, batch_size=1)
    assert rows_per_call == [3, 1, 1, 1]
    for batched, single in zip(together, alone):
        assert batched.size == single.size
        assert np.abs(batched - single).max() <= 1e-4 * np.abs(single).max()


def test_same_seed_is_bit_identical_and_other_seeds_differ(engine, voices):
    forced(engine, {"seeded": 3})
    windows = [window("seeded line", voices["ada"], seed=5), window("seeded line", voices["ada"], seed=6)]
    first, other = engine.synthesize_windows(windows)
    again, other_again = engine.synthesize_windows(windows)
    assert np.array_equal(first, again) and np.array_equal(other, other_again)
    assert first.size == other.size and not np.allclose(first, other, atol=1e-3 * np.abs(first).max())
    [alone] = engine.synthesize_windows(windows[:1])
    [alone_again] = engine.synthesize_windows(windows[:1])
    assert np.array_equal(alone, alone_again)


def test_window_without_audio_is_named(engine, voices):
    forced(engine, {"fine": 2, "silent": 0})
    with pytest.raises(WindowError) as error:
        engine.synthesize_windows([window("fine", voices["ada"]), window("silent", voices["bo"])])
    assert str(error.value) == "vibevoice window 1 produced no audio"
    assert error.value.window_index == 1


def test_window_that_never_ends_is_named(engine, voices):
    forced(engine, {"fine": 2, "endless": 10_000})
    with pytest.raises(WindowError) as error:
        engine.synthesize_windows([window("endless", voices["ada"], seconds=1.0), window("fine", voices["bo"])])
    budget = token_budget(window_seconds(window("endless", voices["ada"], seconds=1.0)))
    assert budget == token_budget(1.0 + 7 / 12)  # "endless": 7 characters at 12/s outweigh the planner's 1 s
    assert str(error.value).startswith(f"vibevoice window 0 did not end within its budget of {budget} tokens")
    assert "\n" not in str(error.value)


def test_non_finite_audio_is_named(tiny_dir, voices):
    import torch

    engine = VibeVoiceEngine(EngineOptions(model=str(tiny_dir)))
    engine.load()
    with torch.no_grad():
        engine._loaded.model.model.latent_scaling_factor.fill_(float("nan"))
    forced(engine, {"broken": 2})
    with pytest.raises(WindowError, match="^vibevoice window 0 produced non-finite samples$"):
        engine.synthesize_windows([window("broken", voices["ada"])])
    engine.close()


def test_loads_once_caches_voice_prompts_and_closes(tiny_dir, voices):
    engine = VibeVoiceEngine(EngineOptions(model=str(tiny_dir)))
    assert not engine.loaded
    forced(engine, {"cache": 1})
    windows = [window("cache me", voices["ada"], voices["bo"], more=[(1, "Ok.")]), window("cache", voices["ada"])]
    engine.synthesize_windows(windows)
    model = engine._loaded.model
    assert (engine.prompt_cache_misses, engine.prompt_cache_hits) == (2, 1)
    engine.synthesize_windows(windows)
    assert (engine.prompt_cache_misses, engine.prompt_cache_hits) == (2, 4)
    assert engine._loaded.model is model
    engine.close()
    assert not engine.loaded and not engine._prompts


def test_guidance_applies_to_the_diffusion_head_only(tiny_dir, voices, monkeypatch):
    from transformers.generation import logits_process

    calls = []
    original = logits_process.UnbatchedClassifierFreeGuidanceLogitsProcessor.__call__
    monkeypatch.setattr(logits_process.UnbatchedClassifierFreeGuidanceLogitsProcessor, "__call__",
                        lambda self, *args: calls.append(1) or original(self, *args))
    rendered = []
    for scale in (1.0, 3.0):
        engine = VibeVoiceEngine(EngineOptions(model=str(tiny_dir), guidance_scale=scale))
        forced(engine, {"guided": 2})
        rendered += engine.synthesize_windows([window("guided", voices["ada"], seed=3)])
        engine.close()
    assert not calls
    assert rendered[0].size == rendered[1].size and not np.allclose(rendered[0], rendered[1])


def test_prompt_matches_the_processors_own_path(engine, voices):
    """Token ids (with left padding) and spliced reference embeddings equal what transformers builds from
    the raw audio, so reusing the processed references changes nothing."""
    import torch

    engine.load()
    loaded = engine._loaded
    windows = [window("A <|vision_pad|>first\nline.", voices["ada"], voices["bo"], more=[(1, "Two."), (0, "Three.")]),
               window("Short.", voices["cy"])]
    prompts = [engine._window_prompt(loaded, index, item) for index, item in enumerate(windows)]
    ours = loaded.processor.tokenizer([prompt.text for prompt in prompts], padding=True, return_tensors="pt")
    conversations = [
        [{"role": "0", "content": [{"type": "text", "text": "A first line."},
                                   {"type": "audio", "audio": prompts[0].voices[0].samples}]},
         {"role": "1", "content": [{"type": "text", "text": "Two."},
                                   {"type": "audio", "audio": prompts[0].voices[1].samples}]},
         {"role": "0", "content": [{"type": "text", "text": "Three."}]}],
        [{"role": "0", "content": [{"type": "text", "text": "Short."},
                                   {"type": "audio", "audio": prompts[1].voices[0].samples}]}]]
    theirs = loaded.processor.apply_chat_template(conversations, tokenize=True, return_dict=True,
                                                  return_tensors="pt",
                                                  processor_kwargs={"padding": True, "sampling_rate": 24_000})
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
    assert ours["attention_mask"][1, 0] == 0  # padded on the left
    model = loaded.model.model
    with torch.inference_mode():
        expected = model.get_audio_features(theirs["input_values"], theirs["padding_mask"], sample=False).pooler_output
        latents = torch.cat([voice.latents for prompt in prompts for voice in prompt.voices])
        spliced = model.multi_modal_projector((latents + model.latent_bias_factor) * model.latent_scaling_factor)
    assert spliced.shape == expected.shape
    assert torch.allclose(spliced, expected, atol=1e-5)


def test_a_model_that_speaks_by_itself_needs_no_hook(speaking_dir, voices):
    engine = VibeVoiceEngine(EngineOptions(model=str(speaking_dir)))
    audio = engine.synthesize(["Hello there.", "A second, longer line of text."], voices["ada"], [1, 2])
    assert [a.size for a in audio] == [3 * HOP, 3 * HOP]
    engine.close()


def test_plain_engine_api_renders_one_line_windows(engine, voices):
    forced(engine, {"Plain": 2, "Second": 3})
    audio = engine.synthesize(["Plain text.", "Second one."], voices["bo"], [1, 2])
    assert [a.size for a in audio] == [2 * HOP, 3 * HOP]


def test_bad_windows_are_named(engine, voices):
    with pytest.raises(WindowError, match="vibevoice window 0 line 1 names speaker slot 1"):
        engine.synthesize_windows([Window(lines=(WindowLine(1, "Hi."),), voices=(voices["ada"],), seed=0,
                                          estimated_seconds=1.0)])
    with pytest.raises(EngineError, match="voice 'ada' has no reference audio"):
        engine.synthesize_windows([window("Hi.", dataclasses.replace(voices["ada"], reference=None,
                                                                      profile_hash="none"))])


def test_budget_covers_scripts_without_spaces(voices):
    chinese = dataclasses.replace(voices["ada"], language="zh")
    line = "大家好，欢迎收听今天的节目，我们来聊一聊语音合成技术的最新进展。" * 2
    planned = Window(lines=(WindowLine(0, line),), voices=(chinese,), seed=0, estimated_seconds=1.0)
    assert window_seconds(planned) >= len(line) / 4.0
    assert window_seconds(dataclasses.replace(planned, estimated_seconds=60.0)) == 60.0


def test_scheduler_matches_diffusers_reference_values():
    import torch

    scheduler = DpmSolverScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    scheduler.set_timesteps(num_inference_steps=10)
    # Values printed by diffusers 0.42.1 DPMSolverMultistepScheduler with the same settings and inputs.
    assert scheduler.timesteps.tolist() == [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]
    assert np.allclose(scheduler.sigmas.numpy(), [20291.302734, 6.364592, 3.10373, 1.980698, 1.390751, 1.015551,
                                                  0.740281, 0.52236, 0.337461, 0.171044, 0.0], rtol=1e-5, atol=1e-6)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, generator=generator)
    for timestep in scheduler.timesteps:
        output = torch.randn(2, 4, generator=generator) + 0.1 * sample
        sample = scheduler.step(output, timestep, sample).prev_sample
    expected = [[1.7157248258590698, -0.7694896459579468, -1.262641191482544, 0.5918554067611694],
                [-0.7728266716003418, -2.0416624546051025, 0.22503343224525452, 1.0351107120513916]]
    assert np.allclose(sample.numpy(), expected, atol=1e-6)


def test_scheduler_equals_diffusers_when_installed():
    diffusers = pytest.importorskip("diffusers")
    import torch

    for settings in ({}, {"timestep_spacing": "trailing"}, {"prediction_type": "epsilon", "beta_schedule": "linear"}):
        full = {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction", **settings}
        ours, theirs = DpmSolverScheduler(**full), diffusers.DPMSolverMultistepScheduler(**full)
        for steps in (1, 2, 5, 10):
            ours.set_timesteps(num_inference_steps=steps)
            theirs.set_timesteps(num_inference_steps=steps)
            assert torch.equal(ours.timesteps, theirs.timesteps)
            generator = torch.Generator().manual_seed(steps)
            a = b = torch.randn(3, 5, generator=generator)
            for timestep in theirs.timesteps:
                output = torch.randn(3, 5, generator=generator)
                a = ours.step(output, timestep, a).prev_sample
                b = theirs.step(output, timestep, b).prev_sample
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
