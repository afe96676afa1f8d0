"""QA policy and thresholds: validated once where they enter (CLI, flow parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from castline.core.hashing import content_hash
from castline.qa.listening import DEFAULT_QUICK_SPEED, MAX_SPEED, QUICK_MODEL, Hearing, hearing_plan

POLICIES = ("off", "warn", "strict")

DEFAULT_WER_THRESHOLDS = {"hibari": 0.15, "piper": 0.20, "pocket-tts": 0.25, "vibevoice": 0.25}
"""Per engine, for English. Measured with Whisper base on good renders: 0.6–2.5 % WER (notes), so
these leave room for ASR errors on short chunks (one word in ten) while catching skipped or
mangled sentences."""
NON_ENGLISH_FACTOR = 2.0
"""Whisper base is much weaker outside English: thresholds double."""
FALLBACK_WER_THRESHOLD = 0.25


@dataclass(frozen=True)
class QASettings:
    """``policy``: off (no checks), warn (check, retry, publish with flags), strict (check, retry,
    and refuse to publish when a chunk still fails). ``max_attempts`` includes the first take.
    ``wer_threshold`` overrides the per-engine default; ``asr_model`` is a faster-whisper model
    path or name (None: the Whisper base model shipped in pip packages). ``listen_speed``: how
    many times faster the first, quick listen hears the takes (1.0–2.0; 1.0 hears every take
    carefully at natural speed only; see ``castline.qa.listening``). ``quick_asr_model``: the model
    of that quick listen for English episodes ("tiny.en", the default: Whisper tiny.en from pip;
    a take it doubts is heard again by ``asr_model`` at natural speed), or None for ``asr_model``
    itself (quick, then careful). An English-only quick model (``*.en``) leaves other languages to
    ``asr_model``."""

    policy: str = "warn"
    max_attempts: int = 3
    wer_threshold: float | None = None
    asr_model: str | None = None
    listen_speed: float = DEFAULT_QUICK_SPEED
    quick_asr_model: str | None = QUICK_MODEL

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"--qa: '{self.policy}' is not one of {', '.join(POLICIES)}")
        if not 1 <= self.max_attempts <= 10:
            raise ValueError(f"--qa-attempts: must be 1..10, got {self.max_attempts}")
        if self.wer_threshold is not None and not 0.0 < self.wer_threshold <= 2.0:
            raise ValueError(f"--wer-threshold: must be in (0, 2], got {self.wer_threshold}")
        if not 1.0 <= self.listen_speed <= MAX_SPEED:
            raise ValueError(f"--qa-listen-speed: must be in [1, {MAX_SPEED:g}], got {self.listen_speed}")
        if self.quick_asr_model is not None and not self.quick_asr_model.strip():
            raise ValueError("--qa-quick-model: give a model (tiny.en, a faster-whisper path or name) or 'same'")

    def hearing_plan(self, language: str) -> tuple[Hearing, ...]:
        """The listens a batch of takes goes through for an episode in ``language``
        (``castline.qa.listening.hearing_plan``)."""
        return hearing_plan(self.asr_model, self.quick_asr_model, self.listen_speed, language)

    @property
    def enabled(self) -> bool:
        return self.policy != "off"

    def wer_threshold_for(self, engine: str, language: str) -> float:
        if self.wer_threshold is not None:
            return self.wer_threshold
        base = DEFAULT_WER_THRESHOLDS.get(engine, FALLBACK_WER_THRESHOLD)
        return base if language.lower().startswith("en") else base * NON_ENGLISH_FACTOR

    def fingerprint(self, words_per_minute: tuple[float, float] | None = None) -> str:
        """What a stored chunk's QA result depends on (a change re-checks cached chunks): these
        settings, how chunks are heard (v2: packed several to a Whisper window; v3: a quick listen
        first, at ``listen_speed``), the quick listen's model (when it is another one than
        ``asr_model``) and the voice's words-per-minute band (None: the default band)."""
        fields = {"v": 3, "wer": self.wer_threshold, "asr": self.asr_model,
                  "attempts": self.max_attempts, "listen_speed": float(self.listen_speed),
                  "wpm": None if words_per_minute is None else [float(v) for v in words_per_minute]}
        if self.quick_asr_model not in (None, self.asr_model):
            fields["quick_asr"] = self.quick_asr_model
        return content_hash(fields)
