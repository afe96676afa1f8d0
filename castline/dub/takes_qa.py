"""Every dub take heard: each placed cue is transcribed by Whisper in the cue sheet's language
(``castline.qa.chunk_check``: the render's checks and normaliser rules), scored, and a failing
take is rendered again — first with a new seed, then slower through the engine's own rate control
— and the best take is kept. Timing is checked per cue (onset error, overrun, stretch).

A take in a language its voice does not speak is flagged ("voice-language"), not crashed on: it
is still heard and reported. ``--qa strict`` refuses to publish (``DubError``) while a take fails.

Outputs per language: ``qa.json`` and ``report.html`` (a per-cue table and a timeline of slots
against placed speech), written to the work folder and published by ``publish_qa``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.core.errors import DubError, EngineError
from castline.core.hashing import derive_seed
from castline.core.timebase import samples_to_ms
from castline.dub.cast import primary_language
from castline.dub.plan import LanguagePlan
from castline.dub.trim import speech_span
from castline.dub.voicing import VoicedLanguage, VoicedUnit, voice_unit, with_rate
from castline.qa.chunk_check import ChunkCheck, Take, check_takes
from castline.qa.settings import QASettings
from castline.storage import ObjectInfo, Store

SCHEMA = "castline.dub-qa/1"
DUB_WORDS_PER_MINUTE = (90.0, 480.0)
"""The speech-rate band for dub takes: wider than the render's (120–360), since fitting a cue to
its slot speeds it up by design (up to rate × stretch ≈ 1.6×); outside it a take is garbled."""
RETRY_RATE = 0.9
"""The last retry speaks this much slower (engines with a rate control), which often fixes a
swallowed word; the fit ladder then brings it back into the slot."""
STRETCH_WARN = 1.2
HEAR_PAD_MS = 250


@dataclass(frozen=True)
class CueQA:
    """One unit's QA: the kept take's check, every attempt ``(seed, rate, wer, flags, passed)``,
    and timing (onset error of the placed speech against its slot, overrun past slot + gap)."""

    index: int
    cue: int
    cue_id: str
    speaker: str
    voice_id: str
    text: str
    check: ChunkCheck
    attempts: tuple[tuple[int, float, float | None, tuple[str, ...], bool], ...]
    onset_error_ms: float
    overrun_ms: int
    stretch: float
    rate: float
    slot_ms: tuple[int, int]
    speech_ms: tuple[int, int]
    flags: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.check.passed and "voice-language" not in self.flags and "engine-error" not in self.flags


@dataclass(frozen=True)
class LanguageQA:
    language: str
    policy: str
    cues: tuple[CueQA, ...]
    seconds: float

    @property
    def failed(self) -> tuple[CueQA, ...]:
        return tuple(cue for cue in self.cues if not cue.passed)


def hear_language(plan: LanguagePlan, voiced: VoicedLanguage, store: Store, work_dir: str | Path,
                  settings: QASettings) -> tuple[VoicedLanguage, LanguageQA]:
    """Hear every take of ``voiced``; re-render failing ones (up to ``settings.max_attempts``
    takes each: new seed, then slower); returns the voiced language with the best takes, and QA."""
    started = time.perf_counter()
    folder = Path(work_dir)
    rate = plan.sample_rate
    language = plan.language
    mismatched = {voice.voice_id for voice in plan.voices
                  if primary_language(voice.language) != primary_language(language)}
    units = list(voiced.units)
    checks = _hear(plan, units, settings)
    history: list[list[tuple[VoicedUnit | None, ChunkCheck, float]]] = [[(u, c, 1.0)] for u, c in zip(units, checks)]
    errors: dict[int, str] = {}
    for attempt in range(1, settings.max_attempts):
        failing = [i for i, entries in enumerate(history) if not any(c.passed for _, c, _ in entries)]
        if not failing:
            break
        slower = attempt == settings.max_attempts - 1 and attempt > 1
        retried: list[tuple[int, VoicedUnit, float]] = []
        for i in failing:
            unit = units[i].unit
            voice = plan.voice(unit.voice_id)
            factor = RETRY_RATE if slower and with_rate(voice, RETRY_RATE) is not None else 1.0
            retry_plan = plan if factor == 1.0 else replace(plan, voices=tuple(
                with_rate(profile, factor) if profile.voice_id == voice.voice_id else profile
                for profile in plan.voices))
            seed = derive_seed(unit.seed, f"dub-qa-retry-{attempt}")
            attempt_folder = folder / f"qa-{language}-{attempt}"
            attempt_folder.mkdir(parents=True, exist_ok=True)
            try:
                again = voice_unit(replace(unit, seed=seed), retry_plan, store, attempt_folder, voiced.stretcher)
            except EngineError as error:
                errors[i] = str(error)
                continue
            retried.append((i, again, factor))
        if not retried:
            break
        heard = _hear(plan, [item for _, item, _ in retried], settings)
        for (i, item, factor), check in zip(retried, heard):
            history[i].append((item, check, factor))
    kept: list[VoicedUnit] = []
    cues: list[CueQA] = []
    for i, entries in enumerate(history):
        best = min(range(len(entries)), key=lambda k: entries[k][1].sort_key())
        item, check, factor = entries[best]
        kept.append(item)
        flags = list(check.flags)
        if item.unit.voice_id in mismatched:
            flags.append("voice-language")
        if i in errors or item.error:
            flags.append("engine-error")
        if item.fit.overrun_samples:
            flags.append("overrun")
        if item.fit.stretch > STRETCH_WARN:
            flags.append("stretched")
        cues.append(_cue_qa(item, check, entries, factor, rate, sorted(set(flags))))
    result = LanguageQA(language=language, policy=settings.policy, cues=tuple(cues),
                        seconds=time.perf_counter() - started)
    return replace(voiced, units=tuple(kept)), result


def _hear(plan: LanguagePlan, units: Sequence[VoicedUnit], settings: QASettings) -> list[ChunkCheck]:
    # Heard at the project rate, where the signal checks' thresholds were measured, with the
    # silence trimming took off put back (the pause-level checks compare speech with pauses).
    pad = np.zeros(int(PROJECT_SAMPLE_RATE * HEAR_PAD_MS / 1000), np.float32)
    takes = [Take(audio=np.concatenate([pad, resample(np.load(item.segment_path), plan.sample_rate,
                                                      PROJECT_SAMPLE_RATE), pad]),
                  text=item.unit.text, engine=plan.voice(item.unit.voice_id).engine,
                  seed=item.unit.seed, words_per_minute=DUB_WORDS_PER_MINUTE) for item in units]
    return check_takes(takes, PROJECT_SAMPLE_RATE, language=plan.language, settings=settings)


def _cue_qa(item: VoicedUnit, check: ChunkCheck, entries, factor: float, rate: int,
            flags: list[str]) -> CueQA:
    audio = np.load(item.segment_path, mmap_mode="r")
    onset, _ = speech_span(np.asarray(audio), rate)
    unit = item.unit
    attempts = tuple((entry.unit.seed, attempt_factor, c.wer, c.flags, c.passed)
                     for entry, c, attempt_factor in entries)
    return CueQA(index=unit.index, cue=unit.cue, cue_id=unit.cue_id, speaker=unit.speaker, voice_id=unit.voice_id,
                 text=unit.text, check=check, attempts=attempts,
                 onset_error_ms=round((item.speech_start_sample + onset - unit.slot_start_sample) * 1000 / rate, 3),
                 overrun_ms=samples_to_ms(item.fit.overrun_samples, rate), stretch=item.fit.stretch,
                 rate=round(item.fit.rate * factor, 4),
                 slot_ms=(samples_to_ms(unit.slot_start_sample, rate), samples_to_ms(unit.slot_end_sample, rate)),
                 speech_ms=(samples_to_ms(item.speech_start_sample, rate), samples_to_ms(item.speech_end_sample, rate)),
                 flags=tuple(flags))


def enforce(results: Sequence[LanguageQA]) -> None:
    """``--qa strict``: refuse (before anything is published) while any take still fails."""
    failing = [(result.language, cue) for result in results if result.policy == "strict" for cue in result.failed]
    if failing:
        listed = ", ".join(f"{language} cue {cue.cue_id or cue.cue} ({', '.join(cue.flags)})"
                           for language, cue in failing[:6])
        raise DubError(f"--qa strict: {len(failing)} take(s) still fail after retries: {listed}; nothing published")


def qa_record(plan: LanguagePlan, result: LanguageQA) -> dict[str, object]:
    return {
        "schema": SCHEMA, "programme": plan.programme, "language": plan.language, "policy": result.policy,
        "cues": len(result.cues), "passed": len(result.cues) - len(result.failed), "failed": len(result.failed),
        "retried": sum(len(cue.attempts) > 1 for cue in result.cues),
        "max_abs_onset_error_ms": max((abs(cue.onset_error_ms) for cue in result.cues), default=0.0),
        "seconds": round(result.seconds, 3),
        "takes": [{"index": cue.index, "cue": cue.cue_id or cue.cue, "speaker": cue.speaker, "voice": cue.voice_id,
                   "text": cue.text, "transcript": cue.check.transcript, "wer": cue.check.wer,
                   "passed": cue.passed, "flags": list(cue.flags),
                   "attempts": [{"seed": seed, "rate": factor, "wer": wer, "flags": list(flags), "passed": passed}
                                for seed, factor, wer, flags, passed in cue.attempts],
                   "onset_error_ms": cue.onset_error_ms, "overrun_ms": cue.overrun_ms, "stretch": cue.stretch,
                   "rate": cue.rate, "slot_ms": list(cue.slot_ms), "speech_ms": list(cue.speech_ms)}
                  for cue in result.cues],
    }


def timeline_svg(result: LanguageQA) -> str:
    """Slots (grey) against placed speech (green passed, red failed), one row per cue."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 0.3 * max(4, len(result.cues)) + 1))
    axes = figure.subplots()
    for row, cue in enumerate(result.cues):
        axes.barh(row, (cue.slot_ms[1] - cue.slot_ms[0]) / 1000, left=cue.slot_ms[0] / 1000, height=0.8,
                  color="#cccccc", label="slot" if row == 0 else None)
        axes.barh(row, (cue.speech_ms[1] - cue.speech_ms[0]) / 1000, left=cue.speech_ms[0] / 1000, height=0.4,
                  color="#2a9d4b" if cue.passed else "#d62728", label="speech" if row == 0 else None)
    axes.set_yticks(range(len(result.cues)), [str(cue.cue_id or cue.cue) for cue in result.cues])
    axes.invert_yaxis()
    axes.set_xlabel("seconds")
    axes.set_ylabel("cue")
    axes.legend(loc="upper right")
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()


def report_html(plan: LanguagePlan, result: LanguageQA) -> str:
    rows = "".join(
        f"<tr class=\"{'ok' if cue.passed else 'fail'}\"><td>{cue.cue_id or cue.cue}</td><td>{html.escape(cue.speaker)}</td>"
        f"<td>{html.escape(cue.text)}</td><td>{html.escape(cue.check.transcript)}</td>"
        f"<td>{'' if cue.check.wer is None else f'{cue.check.wer:.2f}'}</td><td>{len(cue.attempts)}</td>"
        f"<td>{cue.onset_error_ms:.1f}</td><td>{cue.overrun_ms}</td><td>{cue.stretch:.2f}</td><td>{cue.rate:.2f}</td>"
        f"<td>{html.escape(', '.join(cue.flags))}</td></tr>" for cue in result.cues)
    svg = base64.b64encode(timeline_svg(result).encode("utf-8")).decode("ascii")
    return (f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Dub QA: {html.escape(plan.programme)} "
            f"[{plan.language}]</title><style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:2px 6px}}tr.fail{{background:#fdd}}</style>"
            f"<h1>Dub QA: {html.escape(plan.programme)} [{plan.language}]</h1>"
            f"<p>{len(result.cues) - len(result.failed)} of {len(result.cues)} takes pass (policy {result.policy}).</p>"
            f"<h2>Timeline: slots and placed speech</h2><img alt=\"timeline\" src=\"data:image/svg+xml;base64,{svg}\">"
            f"<h2>Takes</h2><table><tr><th>cue</th><th>speaker</th><th>text</th><th>heard</th><th>WER</th>"
            f"<th>takes</th><th>onset error ms</th><th>overrun ms</th><th>stretch</th><th>rate</th><th>flags</th></tr>"
            f"{rows}</table></html>\n")


def publish_qa(store: Store, plan: LanguagePlan, result: LanguageQA) -> tuple[ObjectInfo, ObjectInfo]:
    """``<programme>/<language>/qa.json`` and ``report.html``."""
    record = store.put_bytes((json.dumps(qa_record(plan, result), indent=2, ensure_ascii=False) + "\n").encode(),
                             f"{plan.prefix}/qa.json")
    report = store.put_bytes(report_html(plan, result).encode("utf-8"), f"{plan.prefix}/report.html")
    return record, report
