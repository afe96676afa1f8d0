"""Loading a VibeVoice checkpoint: where it is, what identifies it, and the model with castline's
seeded diffusion hooks installed."""

from __future__ import annotations

import importlib.util
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castline.core.errors import EngineError
from castline.core.text import first_line
from castline.engines.base import EngineOptions
from castline.engines.cloning import from_transformers
from castline.engines.transformers_policy import device_and_dtype, directory_identity, hub_identity, package_version
from castline.engines.vibevoice.budget import SAMPLE_RATE
from castline.engines.vibevoice.diffusion import sample_audio_latent, step_negative_branch
from castline.engines.vibevoice.scheduler import scheduler_for

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$|^[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class Loaded:
    """A loaded checkpoint and what generation needs from it (one per engine instance)."""

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


def model_identity(model: str) -> str:
    """``hub:<id>`` (``@<commit>`` of a locally cached snapshot) for a Hub id; for a local directory
    ``dir:`` + a short hash of its content (``castline.engines.transformers_policy.directory_identity``)."""
    kind, location = model_location(model)
    if kind == "hub":
        return hub_identity(location)
    return directory_identity([("", Path(location), frozenset())])


def model_location(model: str) -> tuple[str, str]:
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise EngineError(f"vibevoice model '{model}' is not a directory")
        return "dir", str(path)
    if _HUB_ID.match(model) and not model.startswith("."):
        return "hub", model
    raise EngineError(f"vibevoice model directory '{model}' does not exist")


def load_model(options: EngineOptions) -> Loaded:
    kind, location = model_location(options.model)
    if kind == "dir" and not (Path(location) / "config.json").is_file():
        raise EngineError(f"vibevoice model '{options.model}' has no config.json (not a transformers checkpoint)")
    device, dtype_name = device_and_dtype(options.device, options.dtype, "vibevoice")
    import torch

    dtype = getattr(torch, dtype_name)
    try:
        VibeVoiceForConditionalGeneration, VibeVoiceProcessor = from_transformers(
            "VibeVoiceForConditionalGeneration", "VibeVoiceProcessor")
    except (ImportError, AttributeError) as error:
        raise EngineError(f"transformers {package_version('transformers')} has no VibeVoice (needs ≥ 5.23)") from error
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
        raise EngineError(f"cannot load vibevoice model '{options.model}': {first_line(error)}") from error
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
            raise EngineError(f"transformers {package_version('transformers')}: VibeVoice generation lacks {hook}, which "
                              "castline's seeded diffusion relies on (tested with 5.23)")
    model._castline_diffusion = None
    model._sample_audio_latent = types.MethodType(sample_audio_latent, model)
    model._step_negative_branch = types.MethodType(step_negative_branch, model)
    end_ids = model.generation_config.eos_token_id
    end_ids = [end_ids] if isinstance(end_ids, int) else list(end_ids or [config.eos_token_id])
    control = tuple(sorted(set(tokenizer.get_added_vocab()) | {processor.audio_token, processor.audio_bos_token,
                                                               processor.audio_eos_token}, key=len, reverse=True))
    return Loaded(model=model, processor=processor, scheduler=scheduler_for(model.generation_config, options.model),
                  device=device, dtype=dtype, model_identity=model_identity(options.model),
                  audio_token=processor.audio_token, control_tokens=control, end_token_ids=frozenset(end_ids),
                  frames_per_second=SAMPLE_RATE / hop, hop_samples=hop)
