"""The engine interface every text-to-speech backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from castline.core.errors import EngineError
from castline.voices.profiles import VoiceProfile


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can do.

    ``max_chars``: hard text budget per synthesis call (characters); ``target_chars``: the
    planner's preferred chunk size; ``sample_rate``: native output rate (Hz).
    ``deterministic``: the same text, voice and seed give bit-identical audio.
    ``thread_parallel``: synthesis mostly releases the GIL, so worker threads run it in
    parallel; when False, calls are serialised across threads (parallel calls measured slower).
    """

    languages: tuple[str, ...]
    cloning: bool
    max_chars: int
    target_chars: int
    sample_rate: int
    deterministic: bool
    thread_parallel: bool = True
    batch_rows: int = 1
    """Texts per ``synthesize`` call worth sending together (rows of one batched forward pass)."""


@dataclass(frozen=True)
class Availability:
    """Whether something is usable on this machine, and why not when it isn't."""

    usable: bool
    reason: str = ""


class Engine(ABC):
    """Load once (per process when ``shared``, else per worker thread), synthesise batches of text
    for one voice, release.

    Output arrays are float32 mono at ``capabilities.sample_rate``; resampling to the project
    rate happens in exactly one place (``castline.audio.resample``), not here.
    """

    name: str = ""
    capabilities: EngineCapabilities
    windowed = False
    shared = False
    """One instance serves every worker thread of the process (``castline.engines.pool``): true
    when the runtime is thread-safe (onnxruntime sessions, a subprocess per call) and the wrapper
    guards its own lazy loading; false gives each thread its own instance."""

    def __init__(self, options: "EngineOptions | None" = None) -> None:
        self.options = options or EngineOptions()

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Cheap check (no model load): is the engine installed here?"""

    @classmethod
    @abstractmethod
    def voice_availability(cls, voice: VoiceProfile) -> Availability:
        """Cheap check: can this engine speak ``voice`` offline here?"""

    @classmethod
    @abstractmethod
    def identity(cls, voice: VoiceProfile, options: "EngineOptions | None" = None) -> str:
        """Engine + model version string for cache keys (no model load); ``options`` are the
        render's engine options, for engines whose output they shape."""

    @abstractmethod
    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        """One float32 mono array per text, at the engine's native rate."""

    def close(self) -> None:
        """Release models and sessions."""


@dataclass(frozen=True)
class EngineOptions:
    """Engine settings from the CLI or flow parameters (validated there).

    ``model``: a local directory or a Hub id; ``device``: "auto", "cpu", "cuda", "cuda:N";
    ``dtype``: "auto", "float32", "bfloat16", "float16"; ``diffusion_steps`` and
    ``guidance_scale`` for diffusion-headed models.
    """

    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    diffusion_steps: int = 10
    guidance_scale: float = 1.3

    def identity(self) -> dict[str, object]:
        """The options that shape audio (for cache keys): not the device."""
        return {"model": self.model, "dtype": self.dtype, "diffusion_steps": self.diffusion_steps,
                "guidance_scale": self.guidance_scale}


@dataclass(frozen=True)
class WindowLine:
    """One turn inside a window: ``speaker`` is the 0-based slot in ``Window.voices``."""

    speaker: int
    text: str


@dataclass(frozen=True)
class Window:
    """Consecutive turns rendered in one call so turn-taking and prosody come from the model.

    ``voices``: at most 4 profiles (with reference audio), in slot order.
    ``estimated_seconds``: the planner's duration estimate, used for the token budget.
    """

    lines: tuple[WindowLine, ...]
    voices: tuple[VoiceProfile, ...]
    seed: int
    estimated_seconds: float


class WindowError(EngineError):
    """A window produced no usable audio (nothing, no end before the budget, non-finite)."""


class WindowedEngine(Engine):
    """An engine that renders whole multi-speaker windows (one waveform per window)."""

    windowed = True

    @abstractmethod
    def synthesize_windows(self, windows: Sequence[Window], batch_size: int | None = None) -> list[np.ndarray]:
        """One float32 mono waveform per window at the engine's rate; raises ``WindowError``
        naming the failing window's index when a window yields no usable audio. ``batch_size``: at most
        this many windows per model call (None: the engine's default); it does not change what is said."""
