"""How Whisper hears packed clips: at what speed, in how long an encoder window, filled how far.

Whisper's encoder cost grows faster than its window: on this machine (Whisper base int8, one
thread) a 30 s window took 0.70–0.75 s, a 20 s one 0.29 s, a 15 s one 0.17–0.19 s, and the
decoder reads the whole encoder output for every token. A quick listen therefore hears speech
1.5× faster (log-mel frames taken every 15 ms of audio instead of every 10 ms, so the pitch is
kept) in 20 s windows: one window holds 27.75 s of audio. Measured with bench/qa_listening.py on
bench/qa.py's 49 chunks (9.4 minutes, hibari and piper, packed in the flow's batches; takes
re-synthesised each run): careful listening 25 windows, 32.7–35.5 Whisper CPU-s, mean WER
0.017–0.023; quick listening at 1.5× 27–28 windows, 21.4–22.2 CPU-s, 1–2 chunks over WER 0.15
per run (heard again carefully). Faster speech or shorter windows made Whisper base loop or drop
sentences (2× in 20 s windows: a chunk heard as "All of it." over and over; 1.5× in 15 s windows:
three sentences lost), and so did windows filled to their last second: the content stops 1.5 s
short of the window's end.

A quick listen is a screen, not a verdict: a take whose transcript fails it is heard again
carefully (``castline.qa.chunk_check``), so quick listening can only cost a second hearing,
never a false flag.

For English episodes the quick listen is by default Whisper tiny.en (``QUICK_MODEL``), and a
take it doubts is heard again by the careful model (Whisper base) at natural speed: see
``hearing_plan`` and the measurements in docs/benchmarks.md (QA listening speed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from castline.qa.asr_model import TINY_EN

WHISPER_HOP_SAMPLES = 160
"""Whisper's log-mel hop at 16 kHz (10 ms): one frame per hop."""
MAX_SPEED = 2.0


@dataclass(frozen=True)
class Listening:
    """``speed``: how many times faster than recorded Whisper hears the audio (1.0–2.0; the log-mel
    hop becomes ``speed`` × 10 ms). ``window_s``: the encoder window, in seconds as Whisper hears
    them (30 is Whisper's own). ``content_s``: the most audio packed into one window, in the same
    seconds; the rest of the window is silence."""

    speed: float
    window_s: float
    content_s: float

    def __post_init__(self) -> None:
        if not 1.0 <= self.speed <= MAX_SPEED:
            raise ValueError(f"listening speed must be in [1, {MAX_SPEED:g}], got {self.speed}")
        if not 0 < self.content_s <= self.window_s <= 30.0:
            raise ValueError(f"need 0 < content_s ≤ window_s ≤ 30, got {self.content_s} and {self.window_s}")

    @property
    def hop_samples(self) -> int:
        """Samples of 16 kHz audio per log-mel frame."""
        return int(round(WHISPER_HOP_SAMPLES * self.speed))

    @property
    def exact_speed(self) -> float:
        """The speed the integer hop gives (what word times are scaled by)."""
        return self.hop_samples / WHISPER_HOP_SAMPLES

    @property
    def frames(self) -> int:
        """Log-mel frames per window (even: the encoder halves them)."""
        return 2 * math.ceil(self.window_s * 100 / 2)

    @property
    def audio_per_window_s(self) -> float:
        """Seconds of recorded audio one window holds at most."""
        return self.content_s * self.exact_speed


CAREFUL = Listening(speed=1.0, window_s=30.0, content_s=29.0)
"""Whisper as trained: 30 s windows at natural speed, packed to 29 s."""
QUICK_WINDOW_S = 20.0
QUICK_CONTENT_S = 18.5
DEFAULT_QUICK_SPEED = 1.5


def quick_listening(speed: float = DEFAULT_QUICK_SPEED) -> Listening:
    """The screening listen at ``speed``; 1.0 means careful listening only."""
    if speed == 1.0:
        return CAREFUL
    return Listening(speed=speed, window_s=QUICK_WINDOW_S, content_s=QUICK_CONTENT_S)


@dataclass(frozen=True)
class Hearing:
    """One listen of QA's hearing plan: ``model`` (a faster-whisper model name or path for
    ``castline.qa.asr.get_transcriber``; None is the bundled Whisper base) at ``listening``."""

    model: str | None
    listening: Listening


QUICK_MODEL = TINY_EN
"""The default quick first listen of English episodes: Whisper tiny.en (``castline.qa.asr_model``)."""


def english_only(model: str | None) -> bool:
    """Whisper's English-only models are named ``*.en`` (tiny.en, base.en…)."""
    return model is not None and model.rstrip("/").endswith(".en")


def hearing_plan(careful_model: str | None, quick_model: str | None, speed: float,
                 language: str) -> tuple[Hearing, ...]:
    """The listens a batch of takes goes through, in order: every take is heard by the first; a
    take whose transcript fails a listen is heard by the next one and judged on that.

    ``quick_model`` None means the careful model screens too. An English-only quick model is used
    for English only; other languages are screened by the careful model. ``speed`` 1.0 with the
    careful model screening means one careful listen, as before the quick listen existed."""
    english = language.split("-")[0].lower() == "en"
    careful = Hearing(careful_model, CAREFUL)
    if quick_model is None or quick_model == careful_model or (english_only(quick_model) and not english):
        if speed == 1.0:
            return (careful,)
        return Hearing(careful_model, quick_listening(speed)), careful
    return Hearing(quick_model, quick_listening(speed)), careful
