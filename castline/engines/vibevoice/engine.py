"""The VibeVoice engine: windows in, one waveform per window out (see the package docstring)."""

from __future__ import annotations

import gc
import json
import threading
import types
from typing import Callable, Sequence

import numpy as np

from castline.core.errors import EngineError
from castline.core.text import first_line
from castline.engines.base import (Availability, EngineCapabilities, EngineOptions, Window, WindowLine,
                                   WindowedEngine)
from castline.engines.cloning import from_transformers, reference_voice_availability, transformers_model_availability
from castline.engines.transformers_policy import package_version
from castline.engines.vibevoice.budget import SAMPLE_RATE, RowBudget, estimate_seconds, token_budget, window_seconds
from castline.engines.vibevoice.diffusion import DiffusionState, window_generator
from castline.engines.vibevoice.loading import Loaded, load_model, model_identity, model_location
from castline.engines.vibevoice.prompts import (PromptCache, WindowPrompt, prompt_embeddings, window_error,
                                                window_prompt)
from castline.voices.profiles import VoiceProfile

# Bump when anything here that shapes the audio changes (prompt building, noise drawing, scheduler).
ENGINE_REVISION = 1


class _class_or_instance_method:
    """Binds to the instance when called on one, else to the class (``identity`` works both ways)."""

    def __init__(self, function: Callable) -> None:
        self.__func__ = function
        self.__doc__ = function.__doc__

    def __get__(self, instance: object, owner: type) -> Callable:
        return types.MethodType(self.__func__, owner if instance is None else instance)


class VibeVoiceEngine(WindowedEngine):
    """Renders windows (up to 4 cloned speakers) with a VibeVoice checkpoint; one instance per worker.

    ``batch_size``: windows per ``generate`` call unless ``synthesize_windows`` is given one.
    ``prompt_cache_hits`` / ``prompt_cache_misses`` count reuses of processed reference clips.
    ``logits_processor_factory`` is test-only plumbing: called with each batch's windows (in row
    order), it returns extra logits processors for that ``generate`` call (tests force a number of
    audio frames from a random model with it).
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
        model_location(self.options.model)
        self._loaded: Loaded | None = None
        self._prompts = PromptCache(self.name)
        self._lock = threading.RLock()

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
        torch_version = package_version("torch").split("+")[0]
        return (f"vibevoice rev {ENGINE_REVISION} transformers {package_version('transformers')} torch {torch_version} "
                f"model {model} options {json.dumps(shaping, sort_keys=True)}")

    @property
    def prompt_cache_hits(self) -> int:
        """Reuses of a processed reference clip."""
        return self._prompts.hits

    @property
    def prompt_cache_misses(self) -> int:
        """Reference clips processed."""
        return self._prompts.misses

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._loaded is not None

    def load(self) -> None:
        """Load the model and processor now (otherwise on first use); once per instance."""
        with self._lock:
            if self._loaded is None:
                self._loaded = load_model(self.options)

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        windows = [Window(lines=(WindowLine(0, text),), voices=(voice,), seed=seed,
                          estimated_seconds=estimate_seconds(text, voice.language))
                   for text, seed in zip(texts, seeds, strict=True)]
        return self.synthesize_windows(windows)

    def synthesize_windows(self, windows: Sequence[Window], batch_size: int | None = None) -> list[np.ndarray]:
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
            size = max(1, int(batch_size or self.batch_size))
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

    def _render_batch(self, loaded: "Loaded", batch: list[tuple[int, Window]], budgets: list[int]) -> list[np.ndarray]:
        import torch
        LogitsProcessorList, StoppingCriteriaList = from_transformers("LogitsProcessorList", "StoppingCriteriaList")

        prompts = [self._window_prompt(loaded, index, window) for index, window in batch]
        encoded = loaded.processor.tokenizer([prompt.text for prompt in prompts], padding=True, return_tensors="pt")
        input_ids = encoded["input_ids"].to(loaded.device)
        attention_mask = encoded["attention_mask"].to(loaded.device)
        generators = [window_generator(window.seed) for _, window in batch]
        prompt_length = input_ids.shape[1]
        extra = list(self.logits_processor_factory([window for _, window in batch])) \
            if self.logits_processor_factory is not None else []
        with torch.inference_mode():
            embeds = prompt_embeddings(loaded, input_ids, prompts, generators)
            loaded.model._castline_diffusion = DiffusionState(generators, float(self.options.guidance_scale))
            try:
                output = loaded.model.generate(
                    input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask,
                    max_new_tokens=max(budgets), num_diffusion_steps=int(self.options.diffusion_steps),
                    noise_scheduler=loaded.scheduler,
                    # Guidance is applied in the diffusion head only (see _sample_audio_latent); a scale of 1
                    # here keeps transformers from also adding token-level CFG, which the original model lacks.
                    guidance_scale=1.0,
                    stopping_criteria=StoppingCriteriaList([RowBudget(prompt_length, budgets)]),
                    logits_processor=LogitsProcessorList(extra), return_dict_in_generate=True)
            except torch.OutOfMemoryError as error:
                raise EngineError(f"vibevoice ran out of memory on a batch of {len(batch)} window(s) "
                                  f"(use a smaller batch or shorter windows)") from error
            except (RuntimeError, ValueError) as error:
                raise EngineError(f"vibevoice generation failed for window(s) {', '.join(str(i) for i, _ in batch)}: "
                                  f"{first_line(error)}") from error
            finally:
                loaded.model._castline_diffusion = None
            generated = output.sequences[:, prompt_length:].cpu()
        results = []
        for row, ((index, window), budget) in enumerate(zip(batch, budgets)):
            within = generated[row, :budget].tolist()
            if not any(token in loaded.end_token_ids for token in within):
                raise window_error(index, f"did not end within its budget of {budget} tokens "
                                          f"({budget / loaded.frames_per_second:.1f} s for an estimate of "
                                          f"{window_seconds(window):.1f} s)")
            audio = output.audio[row]
            if audio is None or audio.numel() == 0:
                raise window_error(index, "produced no audio")
            samples = audio.detach().float().cpu().numpy().reshape(-1).astype(np.float32, copy=False)
            if not np.isfinite(samples).all():
                raise window_error(index, "produced non-finite samples")
            results.append(samples)
        return results

    def _window_prompt(self, loaded: Loaded, index: int, window: Window) -> WindowPrompt:
        return window_prompt(loaded, self._prompts, index, window)
