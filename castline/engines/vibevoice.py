"""VibeVoice through transformers (≥ 5.23): multi-speaker windows with zero-shot voice cloning, 24 kHz.

Each window becomes one chat-template conversation (``role`` = the speaker's slot, the speaker's
reference clip as an audio block in their first message), several windows per ``generate`` call
(left padding). The reference clips are processed once per voice (samples, normalised waveform,
acoustic-encoder latents) and spliced into the prompt embeddings, so a window never re-encodes them.

Randomness is drawn per window from a generator seeded with ``Window.seed`` (the references'
σ-VAE noise and every diffusion frame's initial noise), so a window's audio does not depend on
which other windows share its batch beyond float rounding (~1e-7 relative on CPU), and the same
windows with the same seeds give bit-identical audio on CPU.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import re
import threading
import types
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from castline.engines.base import (Availability, EngineCapabilities, EngineOptions, Window, WindowError,
                                   WindowLine, WindowedEngine)
from castline.engines.cloning import from_transformers, reference_voice_availability, transformers_model_availability
from castline.core.errors import EngineError
from castline.voices.profiles import VoiceProfile

SAMPLE_RATE = 24_000
# Bump when anything here that shapes the audio changes (prompt building, noise drawing, scheduler).
ENGINE_REVISION = 1
MAX_SPEAKERS = 4
BUDGET_HEADROOM = 1.5
BUDGET_EXTRA_TOKENS = 8
PROMPT_CACHE_SIZE = 64
_CHARS_PER_SECOND = {"zh": 4.0, "ja": 5.0, "ko": 5.0}
_DEFAULT_CHARS_PER_SECOND = 12.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$|^[A-Za-z0-9][\w.-]*$")
_FULL_HASH_LIMIT_BYTES = 16 << 20
_EDGE_HASH_BYTES = 1 << 20


def token_budget(estimated_seconds: float, frames_per_second: float = SAMPLE_RATE / 3200) -> int:
    """Generation budget in tokens (one token = one 3200-sample frame, 7.5 frames/s) for a window
    expected to last ``estimated_seconds``: 1.5× headroom plus a few tokens for the end markers."""
    return math.ceil(max(0.0, estimated_seconds) * frames_per_second * BUDGET_HEADROOM) + BUDGET_EXTRA_TOKENS


def window_seconds(window: Window) -> float:
    """The duration (seconds) a window's budget is sized for: the planner's estimate, or a per-language
    character-rate estimate when that is larger (word counts undercount scripts without spaces, e.g. Chinese)."""
    by_characters = sum(estimate_seconds(line.text, window.voices[line.speaker].language) - 1.0
                        for line in window.lines if 0 <= line.speaker < len(window.voices)) + 1.0
    return max(window.estimated_seconds, by_characters)


def estimate_seconds(text: str, language: str = "en") -> float:
    """A deliberately generous duration estimate (seconds) for ``text`` when no planner estimate exists."""
    rate = _CHARS_PER_SECOND.get(language.split("-")[0].lower(), _DEFAULT_CHARS_PER_SECOND)
    return len(text) / rate + 1.0


class _class_or_instance_method:
    """Binds to the instance when called on one, else to the class (``identity`` works both ways)."""

    def __init__(self, function: Callable) -> None:
        self.__func__ = function
        self.__doc__ = function.__doc__

    def __get__(self, instance: object, owner: type) -> Callable:
        return types.MethodType(self.__func__, owner if instance is None else instance)


class VibeVoiceEngine(WindowedEngine):
    """Renders windows (up to 4 cloned speakers) with a VibeVoice checkpoint; one instance per worker.

    ``batch_size``: windows per ``generate`` call. ``prompt_cache_hits`` / ``prompt_cache_misses``
    count reuses of processed reference clips. ``logits_processor_factory`` is test-only plumbing:
    called with each batch's windows (in row order), it returns extra logits processors for that
    ``generate`` call (tests force a number of audio frames from a random model with it).
    """

    name = "vibevoice"
    # Lines of ~70 words: the maintainers advise splitting long turns into several same-speaker
    # turns (long ones speed up); windows then group lines up to --window-words.
    capabilities = EngineCapabilities(languages=("en", "zh"), cloning=True, max_chars=600, target_chars=400,
                                      sample_rate=SAMPLE_RATE, deterministic=True, thread_parallel=True)
    batch_size: int = 4
    logits_processor_factory: Callable[[Sequence[Window]], list] | None = None

    def __init__(self, options: EngineOptions | None = None) -> None:
        super().__init__(options)
        if not self.options.model:
            raise EngineError("the vibevoice engine needs --model DIR_OR_HUB_ID")
        _model_location(self.options.model)
        self._loaded: _Loaded | None = None
        self._prompts: OrderedDict[tuple[str, str, str], _VoicePrompt] = OrderedDict()
        self._lock = threading.RLock()
        self.prompt_cache_hits = 0
        self.prompt_cache_misses = 0

    @classmethod
    def availability(cls) -> Availability:
        return transformers_model_availability("vibevoice", "__init__.py", "VibeVoice")

    @classmethod
    def voice_availability(cls, voice: VoiceProfile) -> Availability:
        return reference_voice_availability(voice)

    @_class_or_instance_method
    def identity(self_or_cls, voice: VoiceProfile, options: EngineOptions | None = None) -> str:
        """Engine revision, transformers and torch versions, the model's identity (content, not path) and the
        audio-shaping options.

        Works on the class (pass ``options``) and on an instance (its own options); never loads the model.
        """
        if options is None:
            options = self_or_cls.options if isinstance(self_or_cls, VibeVoiceEngine) else EngineOptions()
        model = model_identity(options.model) if options.model else "unset"
        # The model's content identity stands for its path, so a moved or copied checkpoint keeps its caches.
        shaping = {key: value for key, value in options.identity().items() if key != "model"}
        # torch's public version only: "+cpu"/"+cu128" builds differ like devices do, which don't key caches.
        torch_version = _version("torch").split("+")[0]
        return (f"vibevoice rev {ENGINE_REVISION} transformers {_version('transformers')} torch {torch_version} "
                f"model {model} options {json.dumps(shaping, sort_keys=True)}")

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._loaded is not None

    def load(self) -> None:
        """Load the model and processor now (otherwise on first use); once per instance."""
        with self._lock:
            if self._loaded is None:
                self._loaded = _load(self.options)

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        windows = [Window(lines=(WindowLine(0, text),), voices=(voice,), seed=seed,
                          estimated_seconds=estimate_seconds(text, voice.language))
                   for text, seed in zip(texts, seeds, strict=True)]
        return self.synthesize_windows(windows)

    def synthesize_windows(self, windows: Sequence[Window]) -> list[np.ndarray]:
        if not windows:
            return []
        with self._lock:
            self.load()
            loaded = self._loaded
            budgets = [token_budget(window_seconds(window), loaded.frames_per_second) for window in windows]
            # Similar budgets share a batch so short windows don't wait on long ones; the audio does not
            # depend on the grouping.
            order = sorted(range(len(windows)), key=lambda index: budgets[index])
            results: list[np.ndarray | None] = [None] * len(windows)
            size = max(1, int(self.batch_size))
            for start in range(0, len(order), size):
                rows = sorted(order[start:start + size])
                for index, audio in zip(rows, self._render_batch(loaded, [(index, windows[index]) for index in rows],
                                                                   [budgets[index] for index in rows])):
                    results[index] = audio
            return results

    def close(self) -> None:
        with self._lock:
            loaded, self._loaded = self._loaded, None
            self._prompts.clear()
        if loaded is not None:
            on_cuda = loaded.device.startswith("cuda")
            del loaded
            gc.collect()
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    def _render_batch(self, loaded: "_Loaded", batch: list[tuple[int, Window]], budgets: list[int]) -> list[np.ndarray]:
        import torch
        LogitsProcessorList, StoppingCriteriaList = from_transformers("LogitsProcessorList", "StoppingCriteriaList")

        prompts = [self._window_prompt(loaded, index, window) for index, window in batch]
        encoded = loaded.processor.tokenizer([prompt.text for prompt in prompts], padding=True, return_tensors="pt")
        input_ids = encoded["input_ids"].to(loaded.device)
        attention_mask = encoded["attention_mask"].to(loaded.device)
        generators = [_generator(window.seed) for _, window in batch]
        prompt_length = input_ids.shape[1]
        extra = list(self.logits_processor_factory([window for _, window in batch])) \
            if self.logits_processor_factory is not None else []
        with torch.inference_mode():
            embeds = _prompt_embeddings(loaded, input_ids, prompts, generators)
            loaded.model._castline_diffusion = _DiffusionState(generators, float(self.options.guidance_scale))
            try:
                output = loaded.model.generate(
                    input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask,
                    max_new_tokens=max(budgets), num_diffusion_steps=int(self.options.diffusion_steps),
                    noise_scheduler=loaded.scheduler,
                    # Guidance is applied in the diffusion head only (see _sample_audio_latent); a scale of 1
                    # here keeps transformers from also adding token-level CFG, which the original model lacks.
                    guidance_scale=1.0,
                    stopping_criteria=StoppingCriteriaList([_RowBudget(prompt_length, budgets)]),
                    logits_processor=LogitsProcessorList(extra), return_dict_in_generate=True)
            except torch.OutOfMemoryError as error:
                raise EngineError(f"vibevoice ran out of memory on a batch of {len(batch)} window(s) "
                                  f"(use a smaller batch or shorter windows)") from error
            except (RuntimeError, ValueError) as error:
                raise EngineError(f"vibevoice generation failed for window(s) {', '.join(str(i) for i, _ in batch)}: "
                                  f"{_first_line(error)}") from error
            finally:
                loaded.model._castline_diffusion = None
            generated = output.sequences[:, prompt_length:].cpu()
        results = []
        for row, ((index, window), budget) in enumerate(zip(batch, budgets)):
            within = generated[row, :budget].tolist()
            if not any(token in loaded.end_token_ids for token in within):
                raise _window_error(index, f"did not end within its budget of {budget} tokens "
                                           f"({budget / loaded.frames_per_second:.1f} s for an estimate of "
                                           f"{window_seconds(window):.1f} s)")
            audio = output.audio[row]
            if audio is None or audio.numel() == 0:
                raise _window_error(index, "produced no audio")
            samples = audio.detach().float().cpu().numpy().reshape(-1).astype(np.float32, copy=False)
            if not np.isfinite(samples).all():
                raise _window_error(index, "produced non-finite samples")
            results.append(samples)
        return results

    def _window_prompt(self, loaded: "_Loaded", index: int, window: Window) -> "_WindowPrompt":
        if not window.lines:
            raise _window_error(index, "has no lines")
        if len(window.voices) > MAX_SPEAKERS:
            raise _window_error(index, f"has {len(window.voices)} voices; VibeVoice takes at most {MAX_SPEAKERS}")
        speakers: list[int] = []
        voice_prompts: list[_VoicePrompt] = []
        messages = []
        for number, line in enumerate(window.lines, start=1):
            if not 0 <= line.speaker < len(window.voices):
                raise _window_error(index, f"line {number} names speaker slot {line.speaker} "
                                           f"but the window has {len(window.voices)} voice(s)")
            text = _speakable(line.text, loaded.control_tokens)
            if not text:
                raise _window_error(index, f"line {number} has no speakable text")
            content: list[dict[str, Any]] = [{"type": "text", "text": text}]
            if line.speaker not in speakers:
                speakers.append(line.speaker)
                voice_prompts.append(self._voice_prompt(loaded, window.voices[line.speaker]))
                content.append({"type": "audio", "audio": voice_prompts[-1].samples})
            messages.append({"role": str(line.speaker), "content": content})
        rendered = loaded.processor.apply_chat_template(messages, tokenize=False)
        pieces = rendered.split(loaded.audio_token)
        if len(pieces) != len(voice_prompts) + 1:
            raise EngineError(f"the model's chat template placed {len(pieces) - 1} voice prompt(s) for "
                              f"{len(voice_prompts)} speaker(s); castline needs one per speaker")
        text = pieces[0] + "".join(loaded.audio_token * prompt.frames + piece
                                   for prompt, piece in zip(voice_prompts, pieces[1:]))
        return _WindowPrompt(text=text, voices=tuple(voice_prompts))

    def _voice_prompt(self, loaded: "_Loaded", voice: VoiceProfile) -> "_VoicePrompt":
        if voice.reference is None:
            raise EngineError(f"voice '{voice.voice_id}' has no reference audio to clone")
        key = (voice.profile_hash or f"reference:{voice.reference.sha256}:{voice.reference.path}", self.name,
               loaded.model_identity)
        prompt = self._prompts.get(key)
        if prompt is not None:
            self._prompts.move_to_end(key)
            self.prompt_cache_hits += 1
            return prompt
        self.prompt_cache_misses += 1
        prompt = _process_reference(loaded, voice)
        self._prompts[key] = prompt
        while len(self._prompts) > PROMPT_CACHE_SIZE:
            self._prompts.popitem(last=False)
        return prompt


@dataclass(frozen=True)
class _VoicePrompt:
    """A reference clip processed once per voice and model.

    ``samples``: 24 kHz mono float32; ``input_values``: the feature extractor's normalised waveform
    (torch, padded to whole frames); ``frames``: audio tokens it occupies (3200 samples each);
    ``latents``: the acoustic encoder's mean latents, (frames, latent size) on the model's device.
    """

    samples: np.ndarray
    input_values: Any
    frames: int
    latents: Any


@dataclass(frozen=True)
class _WindowPrompt:
    """The rendered prompt text (voice placeholders expanded) and its speakers' prompts in prompt order."""

    text: str
    voices: tuple[_VoicePrompt, ...]


@dataclass(frozen=True)
class _Loaded:
    model: Any
    processor: Any
    scheduler: Any
    device: str
    dtype: Any
    model_identity: str
    audio_token: str
    control_tokens: tuple[str, ...]
    end_token_ids: frozenset[int]
    frames_per_second: float
    hop_samples: int


@dataclass
class _DiffusionState:
    """What the diffusion hooks need during one ``generate`` call (mutable: rows change per step)."""

    generators: list
    guidance_scale: float
    active_rows: list[int] = dataclasses.field(default_factory=list)


class _RowBudget:
    """Stopping criterion: row ``i`` stops once it has generated ``budgets[i]`` tokens."""

    def __init__(self, prompt_length: int, budgets: Sequence[int]) -> None:
        self.prompt_length = prompt_length
        self.budgets = list(budgets)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids.shape[1] - self.prompt_length
        return torch.tensor([generated >= budget for budget in self.budgets], device=input_ids.device)


class DpmSolverScheduler:
    """Deterministic DPM-Solver++ multistep sampler (order ≤ 2, final sigma 0), so no diffusers install is needed.

    Written from the published algorithm (Lu et al. 2022) to match diffusers' ``DPMSolverMultistepScheduler``
    for the options VibeVoice checkpoints ship: ``beta_schedule`` "squaredcos_cap_v2" (also "linear",
    "scaled_linear"), ``prediction_type`` "v_prediction" (also "epsilon", "sample"), ``timestep_spacing``
    "linspace" (also "leading", "trailing"). Timesteps are integer training steps (0 … ``num_train_timesteps`` − 1).
    """

    SUPPORTED = {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type", "solver_order",
                 "timestep_spacing", "steps_offset", "algorithm_type", "solver_type", "lower_order_final",
                 "final_sigmas_type"}

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "squaredcos_cap_v2", prediction_type: str = "v_prediction", solver_order: int = 2,
                 timestep_spacing: str = "linspace", steps_offset: int = 0, algorithm_type: str = "dpmsolver++",
                 solver_type: str = "midpoint", lower_order_final: bool = True,
                 final_sigmas_type: str = "zero") -> None:
        # lower_order_final is accepted for diffusers-style configs: with a final sigma of 0 the last step is
        # first-order either way, and it changes nothing else below order 3.
        import torch

        fixed = {"algorithm_type": (algorithm_type, "dpmsolver++"), "solver_type": (solver_type, "midpoint"),
                 "final_sigmas_type": (final_sigmas_type, "zero")}
        for key, (value, supported) in fixed.items():
            if value != supported:
                raise ValueError(f"{key} '{value}' is not supported (only '{supported}')")
        if prediction_type not in ("v_prediction", "epsilon", "sample"):
            raise ValueError(f"prediction_type '{prediction_type}' is not supported")
        if timestep_spacing not in ("linspace", "leading", "trailing"):
            raise ValueError(f"timestep_spacing '{timestep_spacing}' is not supported")
        if solver_order not in (1, 2):
            raise ValueError(f"solver_order {solver_order} is not supported (1 or 2)")
        if beta_schedule == "squaredcos_cap_v2":
            def alpha_bar(t: float) -> float:
                return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = torch.tensor([min(1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps),
                                      0.999) for i in range(num_train_timesteps)], dtype=torch.float32)
        elif beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        elif beta_schedule == "scaled_linear":
            betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float32) ** 2
        else:
            raise ValueError(f"beta_schedule '{beta_schedule}' is not supported")
        self.num_train_timesteps = num_train_timesteps
        self.prediction_type = prediction_type
        self.solver_order = solver_order
        self.timestep_spacing = timestep_spacing
        self.steps_offset = steps_offset
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.int64)
        self.sigmas = None
        self._outputs: list = []
        self._lower_order_nums = 0
        self._step_index: int | None = None

    def set_timesteps(self, num_inference_steps: int, device=None) -> None:
        """Choose ``num_inference_steps`` timesteps (descending) and reset the multistep state."""
        import torch

        total = self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            steps = np.linspace(0, total - 1, num_inference_steps + 1).round()[::-1][:-1]
        elif self.timestep_spacing == "leading":
            ratio = total // (num_inference_steps + 1)
            steps = (np.arange(0, num_inference_steps + 1) * ratio).round()[::-1][:-1] + self.steps_offset
        else:
            steps = np.arange(total, 0, -total / num_inference_steps).round() - 1
        steps = steps.astype(np.int64).copy()
        all_sigmas = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).numpy()
        sigmas = np.interp(steps, np.arange(0, len(all_sigmas)), all_sigmas)
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
        self.timesteps = torch.from_numpy(steps).to(device=device, dtype=torch.int64)
        self._outputs = []
        self._lower_order_nums = 0
        self._step_index = None

    def step(self, model_output, timestep, sample, **kwargs) -> "_StepOutput":
        """One solver step from ``sample`` at ``timestep`` to the next timestep (``.prev_sample``)."""
        if self._step_index is None:
            matches = (self.timesteps == timestep).nonzero()
            self._step_index = int(matches[1] if len(matches) > 1 else matches[0]) if len(matches) else \
                len(self.timesteps) - 1
        index = self._step_index
        final = index == len(self.timesteps) - 1
        x0 = self._predicted_sample(model_output.float(), sample.float(), index)
        self._outputs = (self._outputs + [x0])[-self.solver_order:]
        if self.solver_order == 1 or self._lower_order_nums < 1 or final:
            previous = self._first_order(x0, sample.float(), index)
        else:
            previous = self._second_order(self._outputs, sample.float(), index)
        self._lower_order_nums = min(self._lower_order_nums + 1, self.solver_order)
        self._step_index += 1
        return _StepOutput(previous.to(model_output.dtype))

    def _alpha_sigma(self, index: int):
        import torch

        sigma = self.sigmas[index]
        alpha = 1 / ((sigma ** 2 + 1) ** 0.5)
        return alpha, sigma * alpha, torch.log(alpha) - torch.log(sigma * alpha)

    def _predicted_sample(self, model_output, sample, index: int):
        alpha, sigma, _ = self._alpha_sigma(index)
        if self.prediction_type == "v_prediction":
            return alpha * sample - sigma * model_output
        if self.prediction_type == "epsilon":
            return (sample - sigma * model_output) / alpha
        return model_output

    def _first_order(self, x0, sample, index: int):
        import torch

        alpha_t, sigma_t, lambda_t = self._alpha_sigma(index + 1)
        _, sigma_s, lambda_s = self._alpha_sigma(index)
        h = lambda_t - lambda_s
        return (sigma_t / sigma_s) * sample - (alpha_t * (torch.exp(-h) - 1.0)) * x0

    def _second_order(self, outputs, sample, index: int):
        import torch

        alpha_t, sigma_t, lambda_t = self._alpha_sigma(index + 1)
        _, sigma_s0, lambda_s0 = self._alpha_sigma(index)
        _, _, lambda_s1 = self._alpha_sigma(index - 1)
        m0, m1 = outputs[-1], outputs[-2]
        h, h_0 = lambda_t - lambda_s0, lambda_s0 - lambda_s1
        d0, d1 = m0, (1.0 / (h_0 / h)) * (m0 - m1)
        return ((sigma_t / sigma_s0) * sample - (alpha_t * (torch.exp(-h) - 1.0)) * d0
                - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1)


class _StepOutput:
    __slots__ = ("prev_sample",)

    def __init__(self, prev_sample) -> None:
        self.prev_sample = prev_sample


def model_identity(model: str) -> str:
    """``hub:<id>`` for a Hub id; for a local directory a short hash of every file's name and size plus the
    contents of files up to 16 MiB (configs, tokenizer, chat template) and the first and last MiB of larger
    ones (weights). Cached per process by the files' names, sizes and modification times."""
    kind, location = _model_location(model)
    if kind == "hub":
        return f"hub:{location}{_cached_hub_revision(location)}"
    files = sorted((path for path in Path(location).rglob("*")
                    if path.is_file() and not any(part.startswith(".") for part in path.relative_to(location).parts)),
                   key=lambda path: path.relative_to(location).as_posix())
    listing = tuple((path.relative_to(location).as_posix(), path.stat().st_size, path.stat().st_mtime_ns)
                    for path in files)
    return _directory_digest(str(Path(location).resolve()), listing)


def _cached_hub_revision(repo_id: str) -> str:
    """``@<commit>`` of the locally cached snapshot a Hub id resolves to (no network), else ""."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return ""
    return f"@{Path(cached).parent.name[:12]}" if isinstance(cached, str) else ""


_DIGESTS: dict[tuple[str, tuple], str] = {}


def _directory_digest(root: str, listing: tuple) -> str:
    cached = _DIGESTS.get((root, listing))
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, size, _ in listing:
        digest.update(f"{name}\0{size}\0".encode())
        with open(Path(root) / name, "rb") as handle:
            if size <= _FULL_HASH_LIMIT_BYTES:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_EDGE_HASH_BYTES))
                handle.seek(size - _EDGE_HASH_BYTES)
                digest.update(handle.read(_EDGE_HASH_BYTES))
    result = f"dir:{digest.hexdigest()[:16]}"
    _DIGESTS[(root, listing)] = result
    return result


def _model_location(model: str) -> tuple[str, str]:
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise EngineError(f"vibevoice model '{model}' is not a directory")
        return "dir", str(path)
    if _HUB_ID.match(model) and not model.startswith("."):
        return "hub", model
    raise EngineError(f"vibevoice model directory '{model}' does not exist")


def _load(options: EngineOptions) -> _Loaded:
    kind, location = _model_location(options.model)
    if kind == "dir" and not (Path(location) / "config.json").is_file():
        raise EngineError(f"vibevoice model '{options.model}' has no config.json (not a transformers checkpoint)")
    device, dtype = _device_and_dtype(options.device, options.dtype)
    try:
        VibeVoiceForConditionalGeneration, VibeVoiceProcessor = from_transformers(
            "VibeVoiceForConditionalGeneration", "VibeVoiceProcessor")
    except (ImportError, AttributeError) as error:
        raise EngineError(f"transformers {_version('transformers')} has no VibeVoice (needs ≥ 5.23)") from error
    from transformers.utils import logging as transformers_logging

    # Loading bars would interleave with castline's own progress display.
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        processor = VibeVoiceProcessor.from_pretrained(location)
        # With accelerate, weights go straight to the GPU instead of through host memory first.
        placement = {"device_map": device} if device != "cpu" and importlib.util.find_spec("accelerate") else {}
        model = VibeVoiceForConditionalGeneration.from_pretrained(location, dtype=dtype, **placement)
    except Exception as error:
        raise EngineError(f"cannot load vibevoice model '{options.model}': {_first_line(error)}") from error
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    model = model.to(device).eval()
    config = model.config
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    for what in ("audio_bos_token_id", "audio_eos_token_id", "audio_token_id"):
        if getattr(processor, what) != getattr(config, what):
            raise EngineError(f"vibevoice model '{options.model}': processor and model disagree on {what} "
                              f"({getattr(processor, what)} vs {getattr(config, what)})")
    if processor.feature_extractor.sampling_rate != SAMPLE_RATE:
        raise EngineError(f"vibevoice model '{options.model}' expects {processor.feature_extractor.sampling_rate} Hz "
                          f"audio; castline's engine is built for {SAMPLE_RATE} Hz")
    hop = int(config.audio_config.hop_length)
    for hook in ("_sample_audio_latent", "_step_negative_branch"):
        if not callable(getattr(type(model), hook, None)):
            raise EngineError(f"transformers {_version('transformers')}: VibeVoice generation lacks {hook}, which "
                              "castline's seeded diffusion relies on (tested with 5.23)")
    model._castline_diffusion = None
    model._sample_audio_latent = types.MethodType(_sample_audio_latent, model)
    model._step_negative_branch = types.MethodType(_step_negative_branch, model)
    end_ids = model.generation_config.eos_token_id
    end_ids = [end_ids] if isinstance(end_ids, int) else list(end_ids or [config.eos_token_id])
    control = tuple(sorted(set(tokenizer.get_added_vocab()) | {processor.audio_token, processor.audio_bos_token,
                                                               processor.audio_eos_token}, key=len, reverse=True))
    return _Loaded(model=model, processor=processor, scheduler=_scheduler(model.generation_config, options.model),
                   device=device, dtype=dtype, model_identity=model_identity(options.model),
                   audio_token=processor.audio_token, control_tokens=control, end_token_ids=frozenset(end_ids),
                   frames_per_second=SAMPLE_RATE / hop, hop_samples=hop)


def _device_and_dtype(device: str, dtype: str) -> tuple[str, Any]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "" if torch.version.cuda else " (this torch is a CPU build)"
            raise EngineError(f"--device {device}: CUDA is not available here{build}")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise EngineError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device != "cpu":
        raise EngineError(f"--device '{device}' is not one of auto, cpu, cuda, cuda:N")
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype == "auto":
        chosen = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    elif dtype in names:
        chosen = names[dtype]
        if not _dtype_works(torch, chosen, device):
            raise EngineError(f"--dtype {dtype} is not supported on {device} here")
    else:
        raise EngineError(f"--dtype '{dtype}' is not one of auto, float32, bfloat16, float16")
    return device, chosen


def _dtype_works(torch, dtype, device: str) -> bool:
    if device.startswith("cuda") and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return False
    try:
        signal = torch.ones(1, 2, 8, dtype=dtype, device=device)
        torch.nn.functional.conv1d(signal, torch.ones(2, 2, 3, dtype=dtype, device=device))
        torch.ones(4, 4, dtype=dtype, device=device) @ torch.ones(4, 4, dtype=dtype, device=device)
        return True
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def _scheduler(generation_config, model: str) -> DpmSolverScheduler:
    name = getattr(generation_config, "noise_scheduler_class", None) or "DPMSolverMultistepScheduler"
    settings = dict(getattr(generation_config, "noise_scheduler_config", None) or {})
    if name != "DPMSolverMultistepScheduler":
        raise EngineError(f"vibevoice model '{model}' asks for noise scheduler {name}; castline provides "
                          "DPMSolverMultistepScheduler only")
    unknown = sorted(set(settings) - DpmSolverScheduler.SUPPORTED)
    if unknown:
        raise EngineError(f"vibevoice model '{model}': noise scheduler setting(s) {', '.join(unknown)} not supported")
    try:
        return DpmSolverScheduler(**settings)
    except ValueError as error:
        raise EngineError(f"vibevoice model '{model}': {error}") from error


def _process_reference(loaded: _Loaded, voice: VoiceProfile) -> _VoicePrompt:
    import soundfile
    import torch

    from castline.audio.resample import resample

    path = voice.reference.path
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise EngineError(f"voice '{voice.voice_id}': cannot read reference audio '{path}' "
                          f"({_first_line(error)})") from error
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    samples = np.ascontiguousarray(resample(samples, int(rate), SAMPLE_RATE), dtype=np.float32)
    if samples.size == 0 or not np.isfinite(samples).all() or not np.abs(samples).max() > 0:
        raise EngineError(f"voice '{voice.voice_id}': reference audio '{path}' is empty, silent or not finite")
    features = loaded.processor.feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    frames = math.ceil(int(features["padding_mask"].sum()) / loaded.hop_samples)
    with torch.inference_mode():
        latents = loaded.model.model.audio_tower.encode(
            features["input_values"].to(loaded.device, loaded.dtype), sample=False).latents[0, :frames]
    return _VoicePrompt(samples=samples, input_values=features["input_values"][0, 0], frames=frames, latents=latents)


def _prompt_embeddings(loaded: _Loaded, input_ids, prompts: Sequence[_WindowPrompt], generators: list):
    """The prompt's input embeddings with each voice placeholder replaced by that speaker's projected latents
    plus σ-VAE noise from the window's generator (what the model's own forward does with raw audio)."""
    import torch

    model = loaded.model.model
    embeds = loaded.model.get_input_embeddings()(input_ids)
    vae_std = float(getattr(loaded.model.config.audio_config, "vae_std", 0.0))
    features = []
    for prompt, generator in zip(prompts, generators):
        for voice in prompt.voices:
            scale = vae_std * torch.randn(1, generator=generator)
            noise = torch.randn(tuple(voice.latents.shape), generator=generator)
            features.append(voice.latents.float() + (scale * noise).to(voice.latents.device))
    if not features:
        return embeds
    latents = (torch.cat(features) + model.latent_bias_factor.float()) * model.latent_scaling_factor.float()
    projected = model.multi_modal_projector(latents.to(loaded.dtype))
    mask = input_ids == loaded.model.config.audio_token_id
    if int(mask.sum()) != projected.shape[0]:
        raise EngineError(f"vibevoice prompt has {int(mask.sum())} audio placeholders for {projected.shape[0]} "
                          "reference frames (text contains control tokens?)")
    embeds[mask] = projected.to(embeds.dtype)
    return embeds


def _sample_audio_latent(self, positive_condition, negative_condition, noise_scheduler, num_diffusion_steps,
                         guidance_scale):
    """Replaces VibeVoice's diffusion sampling (same loop) so each row's initial noise comes from its own
    window's generator and the engine's guidance scale applies (generate() runs with guidance_scale=1)."""
    import torch

    state: _DiffusionState = self._castline_diffusion
    device = next(self.model.diffusion_head.parameters()).device
    condition = torch.cat([positive_condition, negative_condition], dim=0).to(device)
    size = self.config.audio_config.hidden_size
    latent = torch.stack([torch.randn(size, generator=state.generators[row]) for row in state.active_rows])
    latent = latent.to(condition)
    noise_scheduler.set_timesteps(num_inference_steps=num_diffusion_steps)
    for timestep in noise_scheduler.timesteps:
        both = torch.cat([latent, latent], dim=0)
        eps = self.model.diffusion_head(both, timestep.repeat(both.shape[0]).to(both), condition=condition)
        conditioned, unconditioned = torch.split(eps, latent.shape[0], dim=0)
        guided = unconditioned + state.guidance_scale * (conditioned - unconditioned)
        latent = noise_scheduler.step(guided, timestep, latent).prev_sample
    return latent.unsqueeze(1)


def _step_negative_branch(self, diffusion_mask, *args, **kwargs):
    """Records which rows synthesise a frame this step (called just before ``_sample_audio_latent``)."""
    self._castline_diffusion.active_rows = diffusion_mask.nonzero().view(-1).tolist()
    return type(self)._step_negative_branch(self, diffusion_mask, *args, **kwargs)


def _generator(seed: int):
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)


def _speakable(text: str, control_tokens: Sequence[str]) -> str:
    """One line of plain text: control tokens removed (script text must not steer the model), whitespace
    (including newlines, which would start a new ``Speaker N:`` line) collapsed."""
    for token in control_tokens:
        text = text.replace(token, " ")
    return " ".join(text.split())


def _window_error(index: int, reason: str) -> WindowError:
    error = WindowError(f"vibevoice window {index} {reason}")
    error.window_index = index
    return error


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
