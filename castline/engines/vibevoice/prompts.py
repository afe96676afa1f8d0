"""Voice prompts: each reference clip processed once per voice and model (samples, normalised
waveform, acoustic-encoder latents), kept in a small LRU cache, and spliced into a window's
prompt embeddings so a window never re-encodes them."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from castline.core.errors import EngineError
from castline.core.text import first_line
from castline.engines.base import Window, WindowError
from castline.engines.vibevoice.budget import SAMPLE_RATE
from castline.engines.vibevoice.loading import Loaded
from castline.voices.profiles import VoiceProfile

MAX_SPEAKERS = 4
PROMPT_CACHE_SIZE = 64


@dataclass(frozen=True)
class VoicePrompt:
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
class WindowPrompt:
    """The rendered prompt text (voice placeholders expanded) and its speakers' prompts in prompt order."""

    text: str
    voices: tuple[VoicePrompt, ...]


class PromptCache:
    """Processed references by (profile, engine, model), the least recently used dropped past
    ``size``; ``hits`` / ``misses`` count reuses. Not thread-safe: the engine holds its lock."""

    def __init__(self, engine_name: str, size: int = PROMPT_CACHE_SIZE) -> None:
        self.engine_name = engine_name
        self.size = size
        self.hits = 0
        self.misses = 0
        self._prompts: OrderedDict[tuple[str, str, str], VoicePrompt] = OrderedDict()

    def __len__(self) -> int:
        return len(self._prompts)

    def clear(self) -> None:
        self._prompts.clear()

    def get(self, loaded: Loaded, voice: VoiceProfile) -> VoicePrompt:
        if voice.reference is None:
            raise EngineError(f"voice '{voice.voice_id}' has no reference audio to clone")
        key = (voice.profile_hash or f"reference:{voice.reference.sha256}:{voice.reference.path}", self.engine_name,
               loaded.model_identity)
        prompt = self._prompts.get(key)
        if prompt is not None:
            self._prompts.move_to_end(key)
            self.hits += 1
            return prompt
        self.misses += 1
        prompt = process_reference(loaded, voice)
        self._prompts[key] = prompt
        while len(self._prompts) > self.size:
            self._prompts.popitem(last=False)
        return prompt


def window_prompt(loaded: Loaded, cache: PromptCache, index: int, window: Window) -> WindowPrompt:
    """The prompt text of one window (each speaker's reference in their first message, expanded
    to its frames of placeholders) and its speakers' processed references, from ``cache``."""
    if not window.lines:
        raise window_error(index, "has no lines")
    if len(window.voices) > MAX_SPEAKERS:
        raise window_error(index, f"has {len(window.voices)} voices; VibeVoice takes at most {MAX_SPEAKERS}")
    speakers: list[int] = []
    voice_prompts: list[VoicePrompt] = []
    messages = []
    for number, line in enumerate(window.lines, start=1):
        if not 0 <= line.speaker < len(window.voices):
            raise window_error(index, f"line {number} names speaker slot {line.speaker} "
                                      f"but the window has {len(window.voices)} voice(s)")
        text = speakable(line.text, loaded.control_tokens)
        if not text:
            raise window_error(index, f"line {number} has no speakable text")
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if line.speaker not in speakers:
            speakers.append(line.speaker)
            voice_prompts.append(cache.get(loaded, window.voices[line.speaker]))
            content.append({"type": "audio", "audio": voice_prompts[-1].samples})
        messages.append({"role": str(line.speaker), "content": content})
    rendered = loaded.processor.apply_chat_template(messages, tokenize=False)
    pieces = rendered.split(loaded.audio_token)
    if len(pieces) != len(voice_prompts) + 1:
        raise EngineError(f"the model's chat template placed {len(pieces) - 1} voice prompt(s) for "
                          f"{len(voice_prompts)} speaker(s); castline needs one per speaker")
    text = pieces[0] + "".join(loaded.audio_token * prompt.frames + piece
                               for prompt, piece in zip(voice_prompts, pieces[1:]))
    return WindowPrompt(text=text, voices=tuple(voice_prompts))


def process_reference(loaded: Loaded, voice: VoiceProfile) -> VoicePrompt:
    import soundfile
    import torch

    from castline.audio.resample import resample

    path = voice.reference.path
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise EngineError(f"voice '{voice.voice_id}': cannot read reference audio '{path}' "
                          f"({first_line(error)})") from error
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    samples = np.ascontiguousarray(resample(samples, int(rate), SAMPLE_RATE), dtype=np.float32)
    if samples.size == 0 or not np.isfinite(samples).all() or not np.abs(samples).max() > 0:
        raise EngineError(f"voice '{voice.voice_id}': reference audio '{path}' is empty, silent or not finite")
    features = loaded.processor.feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    frames = math.ceil(int(features["padding_mask"].sum()) / loaded.hop_samples)
    with torch.inference_mode():
        latents = loaded.model.model.audio_tower.encode(
            features["input_values"].to(loaded.device, loaded.dtype), sample=False).latents[0, :frames]
    return VoicePrompt(samples=samples, input_values=features["input_values"][0, 0], frames=frames, latents=latents)


def prompt_embeddings(loaded: Loaded, input_ids, prompts: Sequence[WindowPrompt], generators: list):
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


def speakable(text: str, control_tokens: Sequence[str]) -> str:
    """One line of plain text: control tokens removed (script text must not steer the model), whitespace
    (including newlines, which would start a new ``Speaker N:`` line) collapsed."""
    for token in control_tokens:
        text = text.replace(token, " ")
    return " ".join(text.split())


def window_error(index: int, reason: str) -> WindowError:
    error = WindowError(f"vibevoice window {index} {reason}")
    error.window_index = index
    return error
