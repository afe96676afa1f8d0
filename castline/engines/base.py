"""The engine interface every text-to-speech backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from castline.voices import VoiceProfile


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


@dataclass(frozen=True)
class Availability:
    """Whether something is usable on this machine, and why not when it isn't."""

    usable: bool
    reason: str = ""


class Engine(ABC):
    """Load once per worker, synthesise batches of text for one voice, release.

    Output arrays are float32 mono at ``capabilities.sample_rate``; resampling to the project
    rate happens in exactly one place (``castline.audio.resample``), not here.
    """

    name: str = ""
    capabilities: EngineCapabilities

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
    def identity(cls, voice: VoiceProfile) -> str:
        """Engine + model version string for cache keys (no model load)."""

    @abstractmethod
    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        """One float32 mono array per text, at the engine's native rate."""

    def close(self) -> None:
        """Release models and sessions."""
