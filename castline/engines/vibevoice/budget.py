"""How long a VibeVoice window runs: the rate, duration estimates and generation budgets."""

from __future__ import annotations

import math

from typing import Sequence

from castline.engines.base import Window

SAMPLE_RATE = 24_000
BUDGET_HEADROOM = 1.5
BUDGET_EXTRA_TOKENS = 8
_CHARS_PER_SECOND = {"zh": 4.0, "ja": 5.0, "ko": 5.0}
_DEFAULT_CHARS_PER_SECOND = 12.0


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


class RowBudget:
    """Stopping criterion: row ``i`` stops once it has generated ``budgets[i]`` tokens."""

    def __init__(self, prompt_length: int, budgets: Sequence[int]) -> None:
        self.prompt_length = prompt_length
        self.budgets = list(budgets)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids.shape[1] - self.prompt_length
        return torch.tensor([generated >= budget for budget in self.budgets], device=input_ids.device)
