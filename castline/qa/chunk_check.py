"""Hear one rendered chunk: transcribe it, score it against its text, run the signal checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from castline.qa.settings import QASettings

BLOCKING_FLAGS = ("wer-high", "truncated", "silent", "music", "noise", "non-speech-energy", "long-silence",
                  "too-fast", "too-slow", "clipped")
"""Flags that make a take fail (and be retried); anything else is reported but passes."""


@dataclass(frozen=True)
class ChunkCheck:
    """QA of one take of a chunk. ``wer`` after normalisation (None when QA was off);
    ``embedding``: the speaker embedding, for episode-level speaker checks."""

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

    def sort_key(self) -> tuple[int, float, int]:
        """Best take first: passed, then lowest WER, then fewest flags."""
        return (0 if self.passed else 1, self.wer if self.wer is not None else math.inf, len(self.flags))

    def to_json(self) -> dict[str, object]:
        return {"transcript": self.transcript, "wer": self.wer, "flags": list(self.flags), "passed": self.passed,
                "metrics": dict(self.metrics), "embedding": [round(v, 6) for v in self.embedding],
                "seed": self.seed, "attempts": self.attempts,
                "attempt_log": [list(entry[:3]) + [list(entry[3]), entry[4]] for entry in self.attempt_log],
                "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, data: dict) -> "ChunkCheck":
        return cls(transcript=data["transcript"], wer=data["wer"], flags=tuple(data["flags"]),
                   passed=bool(data["passed"]), metrics=tuple(sorted(data["metrics"].items())),
                   embedding=tuple(data["embedding"]), seed=int(data["seed"]), attempts=int(data["attempts"]),
                   attempt_log=tuple((int(a), int(s), w, tuple(f), bool(c)) for a, s, w, f, c in data["attempt_log"]),
                   fingerprint=data.get("fingerprint", ""))


def check_take(audio: np.ndarray, sample_rate: int, text: str, *, engine: str, language: str,
               settings: QASettings, seed: int) -> ChunkCheck:
    """Transcribe and check one take (float32 mono at ``sample_rate`` Hz)."""
    from castline.qa.asr import get_transcriber
    from castline.qa.signal_checks import chunk_checks
    from castline.qa.speaker import speaker_embedding
    from castline.qa.wer import score

    lang = language.split("-")[0].lower()
    transcript = get_transcriber(settings.asr_model).transcribe(audio, sample_rate, language=lang)
    wer = score(text, transcript.text, lang)
    flags: list[str] = []
    if wer.wer > settings.wer_threshold_for(engine, language):
        flags.append("wer-high")
    if wer.truncated:
        flags.append("truncated")
    metrics = [("wer", round(float(wer.wer), 4) if math.isfinite(wer.wer) else 99.0),
               ("coverage", round(wer.coverage, 4))]
    for finding in chunk_checks(audio, sample_rate, text):
        if finding.flag:
            flags.append(finding.flag)
        if math.isfinite(finding.value):
            metrics.append((finding.check, round(float(finding.value), 4)))
    embedding = speaker_embedding(audio, sample_rate)
    flags = sorted(set(flags))
    return ChunkCheck(transcript=transcript.text, wer=float(wer.wer) if math.isfinite(wer.wer) else 99.0,
                      flags=tuple(flags), passed=not any(flag in BLOCKING_FLAGS for flag in flags),
                      metrics=tuple(sorted(dict(metrics).items())),
                      embedding=tuple(float(v) for v in embedding), seed=seed, fingerprint=settings.fingerprint())


def choose_best(takes: list[ChunkCheck]) -> tuple[int, ChunkCheck]:
    """Index of the best take, and that take carrying the whole attempt log."""
    best = min(range(len(takes)), key=lambda i: takes[i].sort_key())
    log = tuple((i + 1, take.seed, take.wer, take.flags, i == best) for i, take in enumerate(takes))
    from dataclasses import replace

    return best, replace(takes[best], attempts=len(takes), attempt_log=log)
