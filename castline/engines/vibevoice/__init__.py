"""VibeVoice through transformers (≥ 5.23): multi-speaker windows with zero-shot voice cloning, 24 kHz.

Each window becomes one chat-template conversation (``role`` = the speaker's slot, the speaker's
reference clip as an audio block in their first message), several windows per ``generate`` call
(left padding). The reference clips are processed once per voice (samples, normalised waveform,
acoustic-encoder latents) and spliced into the prompt embeddings, so a window never re-encodes them.

Randomness is drawn per window from a generator seeded with ``Window.seed`` (the references'
σ-VAE noise and every diffusion frame's initial noise), so a window's audio does not depend on
which other windows share its batch beyond float rounding (~1e-7 relative on CPU), and the same
windows with the same seeds give bit-identical audio on CPU.

The engine is split by job: ``engine`` (the adapter castline calls), ``prompts`` (reference clips
processed once and spliced into prompts), ``diffusion`` (per-window seeded noise), ``scheduler``
(DPM-Solver++), ``budget`` (duration estimates and token budgets), ``loading`` (checkpoint
location, identity and loading).
"""

from __future__ import annotations

from castline.engines.vibevoice.budget import (BUDGET_EXTRA_TOKENS, BUDGET_HEADROOM, SAMPLE_RATE, estimate_seconds,
                                               token_budget, window_seconds)
from castline.engines.vibevoice.engine import ENGINE_REVISION, VibeVoiceEngine
from castline.engines.vibevoice.loading import model_identity
from castline.engines.vibevoice.prompts import MAX_SPEAKERS, PROMPT_CACHE_SIZE
from castline.engines.vibevoice.scheduler import DpmSolverScheduler

__all__ = ["BUDGET_EXTRA_TOKENS", "BUDGET_HEADROOM", "DpmSolverScheduler", "ENGINE_REVISION", "MAX_SPEAKERS",
           "PROMPT_CACHE_SIZE", "SAMPLE_RATE", "VibeVoiceEngine", "estimate_seconds", "model_identity",
           "token_budget", "window_seconds"]
