"""Hear one rendered chunk: transcribe it, score it against its text, run the signal checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from castline.qa.settings import QASettings
from castline.qa.signal_checks import WORDS_PER_MINUTE_BAND

BLOCKING_FLAGS = ("wer-high", "truncated", "silent", "music", "noise", "non-speech-energy", "long-silence",
                  "too-fast", "too-slow", "clipped")
"""Flags that make a take fail (and be retried); anything else is reported but passes."""


@dataclass(frozen=True)
class ChunkCheck:
    """QA of one take of a chunk. ``wer`` after normalisation (None when QA was off);
    ``embedding``: the speaker embedding, for episode-level speaker checks; ``asr_model``: the
    Whisper model whose transcript judged the take ("tiny.en", "base", or the model given; None
    for results stored before it was recorded, and when QA was off)."""

    transcript: str
    wer: float | None
    flags: tuple[str, ...]
    passed: bool
    metrics: tuple[tuple[str, float], ...] = ()
    embedding: tuple[float, ...] = ()
    seed: int = 0
    attempts: int = 1
    attempt_log: tuple[tuple[int, int, float | None, tuple[str, ...], bool], ...] = field(default=())
    fingerprint: str = ""
    asr_model: str | None = None

    def sort_key(self) -> tuple[int, float, int]:
        """Best take first: passed, then lowest WER, then fewest flags."""
        return (0 if self.passed else 1, self.wer if self.wer is not None else math.inf, len(self.flags))

    def to_json(self) -> dict[str, object]:
        return {"transcript": self.transcript, "wer": self.wer, "flags": list(self.flags), "passed": self.passed,
                "metrics": dict(self.metrics), "embedding": [round(v, 6) for v in self.embedding],
                "seed": self.seed, "attempts": self.attempts,
                "attempt_log": [list(entry[:3]) + [list(entry[3]), entry[4]] for entry in self.attempt_log],
                "fingerprint": self.fingerprint,
                **({"asr_model": self.asr_model} if self.asr_model is not None else {})}

    @classmethod
    def from_json(cls, data: dict) -> "ChunkCheck":
        return cls(transcript=data["transcript"], wer=data["wer"], flags=tuple(data["flags"]),
                   passed=bool(data["passed"]), metrics=tuple(sorted(data["metrics"].items())),
                   embedding=tuple(data["embedding"]), seed=int(data["seed"]), attempts=int(data["attempts"]),
                   attempt_log=tuple((int(a), int(s), w, tuple(f), bool(c)) for a, s, w, f, c in data["attempt_log"]),
                   fingerprint=data.get("fingerprint", ""), asr_model=data.get("asr_model"))


@dataclass(frozen=True)
class Take:
    """One rendered take to hear: ``audio`` (float32 mono at the caller's sample rate), the
    ``text`` it should say, its ``engine`` (for the WER threshold), the ``seed`` it was rendered
    with, and the voice's ``words_per_minute`` band (low, high) for the speech-rate check."""

    audio: np.ndarray
    text: str
    engine: str
    seed: int
    words_per_minute: tuple[float, float] = WORDS_PER_MINUTE_BAND


ASR_FLAGS = ("wer-high", "truncated")
"""Flags that come from the transcript: a listen that raises one passes the take to the next listen."""


def check_takes(takes: Sequence[Take], sample_rate: int, *, language: str, settings: QASettings) -> list[ChunkCheck]:
    """Hear and check several takes: all are transcribed together, packed into as few Whisper
    windows as they fit (``castline.qa.packing``), by the first listen of the settings' hearing
    plan (``QASettings.hearing_plan``: by default Whisper tiny.en at ``listen_speed`` for English,
    Whisper base at ``listen_speed`` otherwise); the takes whose transcript fails it are heard
    again by the next listen (Whisper base at natural speed), together, and judged on that. Each
    take is then scored and checked on its own; ``asr_model`` names the model that judged it."""
    from castline.qa.asr import get_transcriber
    from castline.qa.asr_model import model_label
    from castline.qa.packing import hear_clips

    if not takes:
        return []
    lang = language.split("-")[0].lower()
    signals = [_signal_findings(take, sample_rate) for take in takes]
    checks: list[ChunkCheck] = [None] * len(takes)  # type: ignore[list-item]  # every take is heard first
    pending = list(range(len(takes)))
    plan = settings.hearing_plan(language)
    for number, hearing in enumerate(plan):
        if not pending:
            break
        transcriber = get_transcriber(hearing.model)
        transcripts = hear_clips([takes[i].audio for i in pending], sample_rate, transcriber,
                                 language=lang, listening=hearing.listening)
        if hearing.model != plan[0].model:
            transcriber.unload_when_idle()  # heard again rarely: loaded for those takes only
        for i, transcript in zip(pending, transcripts, strict=True):
            checks[i] = _judge(takes[i], transcript.text, transcript.word_probability, signals[i], language=language,
                               settings=settings, relistened=number > 0, asr_model=model_label(hearing.model))
        pending = [i for i in pending if set(checks[i].flags) & set(ASR_FLAGS)]
    return checks


@dataclass(frozen=True)
class _Signals:
    """What a take's audio says without the recogniser: signal findings and the speaker embedding."""

    findings: tuple
    embedding: np.ndarray


def _signal_findings(take: Take, sample_rate: int) -> _Signals:
    from castline.qa.signal_checks import chunk_checks
    from castline.qa.speaker import speaker_embedding

    return _Signals(tuple(chunk_checks(take.audio, sample_rate, take.text, words_per_minute_band=take.words_per_minute)),
                    speaker_embedding(take.audio, sample_rate))


def _judge(take: Take, transcript: str, word_probability: float | None, signals: _Signals, *, language: str,
           settings: QASettings, relistened: bool = False, asr_model: str | None = None) -> ChunkCheck:
    from castline.qa.wer import score

    wer = score(take.text, transcript, language.split("-")[0].lower())
    flags: list[str] = []
    if wer.wer > settings.wer_threshold_for(take.engine, language):
        flags.append("wer-high")
    if wer.truncated:
        flags.append("truncated")
    metrics = [("wer", round(float(wer.wer), 4) if math.isfinite(wer.wer) else 99.0),
               ("coverage", round(wer.coverage, 4)), ("asr_careful_relisten", 1.0 if relistened else 0.0)]
    if word_probability is not None:
        metrics.append(("asr_word_probability", round(word_probability, 4)))
    for finding in signals.findings:
        if finding.flag:
            flags.append(finding.flag)
        if math.isfinite(finding.value):
            metrics.append((finding.check, round(float(finding.value), 4)))
    flags = sorted(set(flags))
    return ChunkCheck(transcript=transcript, wer=float(wer.wer) if math.isfinite(wer.wer) else 99.0,
                      flags=tuple(flags), passed=not any(flag in BLOCKING_FLAGS for flag in flags),
                      metrics=tuple(sorted(dict(metrics).items())),
                      embedding=tuple(float(v) for v in signals.embedding), seed=take.seed,
                      fingerprint=settings.fingerprint(take.words_per_minute), asr_model=asr_model)


def choose_best(takes: list[ChunkCheck]) -> tuple[int, ChunkCheck]:
    """Index of the best take, and that take carrying the whole attempt log."""
    best = min(range(len(takes)), key=lambda i: takes[i].sort_key())
    log = tuple((i + 1, take.seed, take.wer, take.flags, i == best) for i, take in enumerate(takes))
    return best, replace(takes[best], attempts=len(takes), attempt_log=log)
